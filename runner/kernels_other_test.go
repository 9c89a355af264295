//go:build !amd64

package runner

func addGemmForms(map[string]func([]float32, int, []float32, int, int, []float32, int, int, int)) {}

func useAssembly(bool, bool) {}

const hasAVX2, hasAVX512 = false, false
