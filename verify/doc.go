// Package verify measures how closely a model's logits follow a
// reference's on the same tokens, the way llama.cpp's perplexity tool
// judges a quantization: perplexity, KL divergence, top-1 agreement and the
// size of the logit differences ([Compare]). [Logits] runs tokens through
// any engine; [NewReport] compares two runs (or a run and a logits file,
// package logits) and checks [Thresholds], giving a [Report] that says
// whether it passed. For long texts, [Stream] hands out a run's logits a
// chunk at a time and a [Comparer] takes them so, with [ReportOf] for its
// Metrics; a [Spill] keeps one run's in a temporary file for
// [Comparer.AddBeside] while the other runs. [CompareRuns] and
// [CompareFile] put those together for two runs, or a run and a logits
// file. Memory then follows a chunk, not the text.
package verify
