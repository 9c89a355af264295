package verify

import "fmt"

// Thresholds are the limits a report is checked against; nil means not
// checked.
type Thresholds struct {
	MaxMeanKL      *float64 // mean KL divergence (reference ‖ model)
	MinTop1Percent *float64 // top-1 agreement, in percent
	MaxAbsDLogit   *float64 // largest |logit − reference logit|
}

// Any reports whether any threshold is set.
func (t Thresholds) Any() bool {
	return t.MaxMeanKL != nil || t.MinTop1Percent != nil || t.MaxAbsDLogit != nil
}

// A ThresholdError is a threshold no comparison can meet, or that means
// nothing.
type ThresholdError struct {
	Metric string  // "mean KL", "top-1 agreement" or "|Δlogit|"
	Value  float64 // the threshold
	Want   string  // the values it may take
}

func (e *ThresholdError) Error() string {
	return fmt.Sprintf("%s threshold %g: want %s", e.Metric, e.Value, e.Want)
}

// Validate returns a *ThresholdError for the first threshold that is
// negative or NaN (mean KL and |Δlogit| are at least 0) or, for top-1
// agreement, outside 0 to 100 percent.
func (t Thresholds) Validate() error {
	if v := t.MaxMeanKL; v != nil && !(*v >= 0) {
		return &ThresholdError{"mean KL", *v, "0 or more"}
	}
	if v := t.MinTop1Percent; v != nil && !(*v >= 0 && *v <= 100) {
		return &ThresholdError{"top-1 agreement", *v, "0 to 100 (percent)"}
	}
	if v := t.MaxAbsDLogit; v != nil && !(*v >= 0) {
		return &ThresholdError{"|Δlogit|", *v, "0 or more"}
	}
	return nil
}

// Check returns a line for every threshold m misses. A NaN metric misses
// every threshold on it.
func (t Thresholds) Check(m Metrics) []string {
	var failed []string
	if t.MaxMeanKL != nil && !(m.MeanKL <= *t.MaxMeanKL) {
		failed = append(failed, fmt.Sprintf("mean KL %.6g > %g", m.MeanKL, *t.MaxMeanKL))
	}
	if t.MinTop1Percent != nil && !(m.Top1Percent >= *t.MinTop1Percent) {
		failed = append(failed, fmt.Sprintf("top-1 agreement %.2f%% < %g%%", m.Top1Percent, *t.MinTop1Percent))
	}
	if t.MaxAbsDLogit != nil && !(m.MaxAbsDiff <= *t.MaxAbsDLogit) {
		failed = append(failed, fmt.Sprintf("max |Δlogit| %.6g > %g", m.MaxAbsDiff, *t.MaxAbsDLogit))
	}
	return failed
}

// A Report is the outcome of a verification.
type Report struct {
	Model     string   `json:"model"`
	Reference string   `json:"reference,omitempty"`
	Tokens    int      `json:"tokens"`
	Metrics   Metrics  `json:"metrics"`
	Failed    []string `json:"failed,omitempty"` // the thresholds missed
	Passed    bool     `json:"passed"`           // no threshold missed
}

// NewReport compares the rows of logits of the model with those of the
// reference on tokens (ref nil: perplexity only) and checks th; thresholds
// without a reference are an error.
func NewReport(model, reference string, tokens []int, rows, ref [][]float32, th Thresholds, perPosition bool) (*Report, error) {
	if ref == nil && th.Any() {
		return nil, fmt.Errorf("verify: thresholds need a reference")
	}
	m, err := Compare(rows, ref, tokens, perPosition)
	if err != nil {
		return nil, err
	}
	return ReportOf(model, reference, m, th), nil
}

// ReportOf is the report of metrics m (of a [Comparer], say), checked
// against th.
func ReportOf(model, reference string, m Metrics, th Thresholds) *Report {
	r := &Report{Model: model, Reference: reference, Tokens: m.Positions, Metrics: m, Failed: th.Check(m)}
	r.Passed = len(r.Failed) == 0
	return r
}

// SampleText is what a verification reads when given no text: a few
// hundred bytes of plain English prose, enough for stable KL and agreement
// figures.
const SampleText = `The little river ran through the valley, past the mill and the old stone bridge, ` +
	`and on towards the sea. In spring the water rose with the melting snow, and the children ` +
	`of the village would stand on the bridge to watch the branches float by. "It is going home," ` +
	`said the miller's daughter, "like everything that runs downhill." Nobody argued with her.`
