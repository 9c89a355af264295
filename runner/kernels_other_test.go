//go:build !amd64

package runner

func kernelSets() []kernelSet { return []kernelSet{{"portable", false, false}} }

func useAssembly(bool, bool) {}

const hasAVX2, hasAVX512 = false, false
