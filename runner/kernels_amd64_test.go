package runner

// kernelSets lists the kernel sets this CPU can run, portable Go first.
func kernelSets() []kernelSet {
	sets := []kernelSet{{"portable", false, false}}
	if hasAVX2 {
		sets = append(sets, kernelSet{"avx2", true, false})
	}
	if hasAVX512 {
		sets = append(sets, kernelSet{"avx512", true, true})
	}
	return sets
}
