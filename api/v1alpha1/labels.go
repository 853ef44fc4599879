package v1alpha1

import "strings"

// LabelStatus is the label key whose value mirrors status.phase in lower case; see the package
// documentation for its contract.
const LabelStatus = "status"

// The values of LabelStatus.
const (
	LabelPending  = "pending"
	LabelApproved = "approved"
	LabelRejected = "rejected"
	LabelFailed   = "failed"
)

// LabelValues lists every value LabelStatus may take, in lifecycle order.
var LabelValues = []string{LabelPending, LabelApproved, LabelRejected, LabelFailed}

// LabelValue is the LabelStatus value that matches the phase. An application without a phase
// (not yet submitted) is pending.
func (p Phase) LabelValue() string {
	if p == "" {
		return LabelPending
	}
	return strings.ToLower(string(p))
}

// IsValidLabelValue reports whether v is one of LabelValues.
func IsValidLabelValue(v string) bool {
	for _, known := range LabelValues {
		if v == known {
			return true
		}
	}
	return false
}
