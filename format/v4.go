package format

// RWKV-4: per-channel decay and bonus (time_decay, time_first), a token
// shift that mixes as x⊙m + prev⊙(1−m), no heads. It is what a model is
// when no other generation's tensors are there.
var gen4 = generation{
	versions: []Version{V4},
	detect:   func(*detector) Version { return V4 },
}
