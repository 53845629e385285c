{{/*
The pod of one role, (list . "api") or (list . "relay"). An init container
copies the keys from their Secret into the data directory (portholed wants
its keys 0600 and its data directory its own), with the role's config: the
API nodes' Secret holds the signing keys; the relay nodes' holds none (it
is what portholed init-node made), and portholed refuses to serve a relay
node on one that does.
*/}}
{{- define "porthole.pod" -}}
{{- $ := index . 0 -}}
{{- $role := index . 1 -}}
{{- $v := $.Values -}}
{{- $c := index $v $role -}}
{{- if and $v.recordings.awsRole $v.recordings.credentialsSecret -}}
{{- fail "recordings: awsRole and credentialsSecret cannot both sign: set awsRole to false to use the Secret's keys" -}}
{{- end -}}
metadata:
  labels:
    {{- include "porthole.metaLabels" $ | nindent 4 }}
    {{- include "porthole.selectorLabels" (list $ $role) | nindent 4 }}
  annotations:
    checksum/config: {{ include "porthole.config" (list $ $role) | sha256sum }}
spec:
  serviceAccountName: {{ include "porthole.serviceAccountName" $ }}
  automountServiceAccountToken: {{ $v.recordings.awsRole }}
  {{- with $v.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $v.podSecurityContext | nindent 4 }}
  # portholed disconnects its devices and records them offline on SIGTERM.
  terminationGracePeriodSeconds: 30
  initContainers:
    - name: keys
      image: "{{ required "image.repository is required" $v.image.repository }}:{{ required "image.tag is required" $v.image.tag }}"
      imagePullPolicy: {{ $v.image.pullPolicy }}
      securityContext:
        {{- toYaml $v.securityContext | nindent 8 }}
      env:
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
      command:
        - /bin/sh
        - -ec
        - |
          umask 077
          mkdir -p /var/lib/portholed/data
          chmod 0700 /var/lib/portholed/data
          {{- if eq $role "api" }}
          for f in control_key user_ca host_ca relay_host_key tls.crt tls.key; do
            cat "/etc/porthole/keys/$f" >"/var/lib/portholed/data/$f"
          done
          # A data directory made before node_secret was has none.
          if [ -f /etc/porthole/keys/node_secret ]; then
            cat /etc/porthole/keys/node_secret >/var/lib/portholed/data/node_secret
          fi
          {{- else }}
          for f in control_key.pub user_ca.pub host_ca.pub relay_host_key relay_host_key-cert.pub tls.crt tls.key node_secret; do
            cat "/etc/porthole/keys/$f" >"/var/lib/portholed/data/$f"
          done
          {{- end }}
          sed "s/__POD_NAME__/$POD_NAME/g" /etc/porthole/config/{{ $role }}.yaml >/var/lib/portholed/data/portholed.yaml
      resources:
        requests:
          cpu: 10m
          memory: 16Mi
        limits:
          cpu: 100m
          memory: 32Mi
      volumeMounts:
        - name: data
          mountPath: /var/lib/portholed
        - name: keys
          mountPath: /etc/porthole/keys
          readOnly: true
        - name: config
          mountPath: /etc/porthole/config
          readOnly: true
  containers:
    - name: portholed
      image: "{{ $v.image.repository }}:{{ $v.image.tag }}"
      imagePullPolicy: {{ $v.image.pullPolicy }}
      command: ["/usr/local/bin/portholed", "serve", "--config", "/var/lib/portholed/data/portholed.yaml"]
      securityContext:
        {{- toYaml $v.securityContext | nindent 8 }}
      ports:
        - name: https
          containerPort: 8443
          protocol: TCP
      env:
        {{- if $v.database.passwordSecret.name }}
        - name: PGPASSWORD
          valueFrom:
            secretKeyRef:
              name: {{ $v.database.passwordSecret.name }}
              key: {{ $v.database.passwordSecret.key }}
        {{- end }}
        {{- if $v.recordings.region }}
        - name: AWS_REGION
          value: {{ $v.recordings.region | quote }}
        {{- end }}
      {{- with $v.recordings.credentialsSecret }}
      envFrom:
        - secretRef:
            name: {{ . }}
      {{- end }}
      # /healthz answers while the process serves; on API nodes /readyz
      # once the database answers too.
      startupProbe:
        httpGet:
          scheme: HTTPS
          path: /healthz
          port: https
        periodSeconds: 2
        failureThreshold: 30
      livenessProbe:
        httpGet:
          scheme: HTTPS
          path: /healthz
          port: https
        periodSeconds: 10
        failureThreshold: 3
      readinessProbe:
        httpGet:
          scheme: HTTPS
          path: {{ if eq $role "api" }}/readyz{{ else }}/healthz{{ end }}
          port: https
        periodSeconds: 5
        failureThreshold: 2
      resources:
        {{- toYaml $c.resources | nindent 8 }}
      volumeMounts:
        - name: data
          mountPath: /var/lib/portholed
        - name: tmp
          mountPath: /tmp
        {{- if $v.broker.passwordSecret.name }}
        - name: broker-password
          mountPath: /etc/porthole/broker-password
          readOnly: true
        {{- end }}
        {{- if $v.broker.clientCertSecret }}
        - name: broker-tls
          mountPath: /etc/porthole/broker-tls
          readOnly: true
        {{- end }}
        {{- if $v.broker.caSecret }}
        - name: broker-ca
          mountPath: /etc/porthole/broker-ca
          readOnly: true
        {{- end }}
  volumes:
    - name: data
      emptyDir:
        medium: Memory
        sizeLimit: 16Mi
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
    - name: config
      configMap:
        name: {{ include "porthole.fullname" $ }}
    - name: keys
      secret:
        {{- if eq $role "api" }}
        secretName: {{ required "keys.secretName is required" $v.keys.secretName }}
        {{- else }}
        secretName: {{ required "keys.relaySecretName is required: the relay nodes' data directory, from portholed init-node" $v.keys.relaySecretName }}
        {{- end }}
        defaultMode: 0440
    {{- if $v.broker.passwordSecret.name }}
    - name: broker-password
      secret:
        secretName: {{ $v.broker.passwordSecret.name }}
        defaultMode: 0440
        items:
          - key: {{ $v.broker.passwordSecret.key }}
            path: password
    {{- end }}
    {{- if $v.broker.clientCertSecret }}
    - name: broker-tls
      secret:
        secretName: {{ $v.broker.clientCertSecret }}
        defaultMode: 0440
    {{- end }}
    {{- if $v.broker.caSecret }}
    - name: broker-ca
      secret:
        secretName: {{ $v.broker.caSecret }}
        defaultMode: 0444
    {{- end }}
  {{- with $c.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
