package api

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the API's Prometheus series. Labels are bounded: route is a
// pattern from the route table (or "unmatched"), never a raw path.
type metrics struct {
	requests      *prometheus.CounterVec   // route, code
	duration      *prometheus.HistogramVec // route
	loginFailures *prometheus.CounterVec   // reason
	enrollments   prometheus.Counter
	enrollFails   *prometheus.CounterVec // reason
}

// Reasons counted in porthole_api_login_failures_total and
// porthole_api_enrollment_failures_total.
const (
	reasonRateLimited  = "rate_limited"
	reasonUnknownUser  = "unknown_user"
	reasonSSOUser      = "sso_user" // a password tried on an account that signs in with SSO
	reasonBadPassword  = "bad_password"
	reasonBadTOTP      = "bad_totp"
	reasonReplayedTOTP = "replayed_totp"
	reasonUnknownToken = "unknown_token"
	reasonExpired      = "token_expired"
	reasonUsedUp       = "token_used_up"
	reasonNameTaken    = "name_taken"
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "porthole_api_requests_total",
			Help: "API requests answered, by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "porthole_api_request_duration_seconds",
			Help:    "Time to answer API requests, by route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		loginFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "porthole_api_login_failures_total",
			Help: "Refused logins, by reason.",
		}, []string{"reason"}),
		enrollments: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "porthole_api_enrollments_total",
			Help: "Devices enrolled.",
		}),
		enrollFails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "porthole_api_enrollment_failures_total",
			Help: "Refused enrollments (bad, expired or used-up tokens, taken names), by reason.",
		}, []string{"reason"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.loginFailures, m.enrollments, m.enrollFails} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
