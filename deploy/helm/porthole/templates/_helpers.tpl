{{/* The release's full name, cut to what Kubernetes names take. */}}
{{- define "porthole.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The labels of every object but the selector's. */}}
{{- define "porthole.metaLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "porthole.labels" -}}
{{ include "porthole.metaLabels" . }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Selector labels of one component (api or relay): pass (list . "api"). */}}
{{- define "porthole.selectorLabels" -}}
app.kubernetes.io/name: {{ (index . 0).Chart.Name }}
app.kubernetes.io/instance: {{ (index . 0).Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "porthole.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "porthole.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
The portholed config of one role: pass (list . "api") or (list . "relay").
A relay's advertised name holds __POD_NAME__, which the init container
replaces with the pod's name.
*/}}
{{- define "porthole.config" -}}
{{- $ := index . 0 -}}
{{- $role := index . 1 -}}
{{- $v := $.Values -}}
# portholed configuration of the {{ $role }} nodes, from the Helm chart
# deploy/helm/porthole. Unknown keys are errors.
data_dir: /var/lib/portholed/data
roles: [{{ $role }}]
# One TLS port serves the API, and on relay nodes the relay, by ALPN;
# the Service maps 443 to it.
listen: ":8443"
public_url: https://{{ required "publicHost is required" $v.publicHost }}
database: {{ required "database.url is required" $v.database.url | quote }}
broker:
  url: {{ required "broker.url is required" $v.broker.url | quote }}
  {{- with $v.broker.publicURL }}
  public_url: {{ . | quote }}
  {{- end }}
  {{- with $v.broker.username }}
  username: {{ . | quote }}
  {{- end }}
  {{- if $v.broker.passwordSecret.name }}
  password_file: /etc/porthole/broker-password/password
  {{- end }}
  {{- if $v.broker.clientCertSecret }}
  cert_file: /etc/porthole/broker-tls/tls.crt
  key_file: /etc/porthole/broker-tls/tls.key
  {{- end }}
  {{- if $v.broker.caSecret }}
  ca_file: /etc/porthole/broker-ca/ca.crt
  {{- end }}
  {{- with $v.broker.shareGroup }}
  share_group: {{ . | quote }}
  {{- end }}
relay:
  # The SSH relay, for agents older than the relay's second protocol, on
  # the pod's loopback only.
  listen: "127.0.0.1:2222"
  {{- if eq $role "relay" }}
  advertise: __POD_NAME__.{{ required "relay.advertiseDomain is required" $v.relay.advertiseDomain }}:443
  {{- with $v.relay.region }}
  region: {{ . | quote }}
  {{- end }}
  {{- end }}
recordings: {{ required "recordings.url is required" $v.recordings.url | quote }}
recordings_s3:
  {{- with $v.recordings.region }}
  region: {{ . | quote }}
  {{- end }}
  {{- with $v.recordings.endpoint }}
  endpoint: {{ . | quote }}
  {{- end }}
  aws_role: {{ $v.recordings.awsRole }}
{{- with $v.sessions }}
sessions:
  {{- with .idleTimeout }}
  idle_timeout: {{ . }}
  {{- end }}
  {{- with .maxDuration }}
  max_duration: {{ . }}
  {{- end }}
{{- end }}
log:
  level: {{ $v.log.level }}
  format: {{ $v.log.format }}
{{- end -}}
