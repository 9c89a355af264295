package runner

func addGemmForms(forms map[string]func([]float32, int, []float32, int, int, []float32, int, int, int)) {
	if hasAVX2 {
		forms["avx2"] = gemmF32AVX2
	}
	if hasAVX512 {
		forms["avx512"] = gemmF32AVX512
	}
}
