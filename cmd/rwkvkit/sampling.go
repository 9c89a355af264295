package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/spf13/pflag"

	"github.com/rwkvkit/rwkvkit/generate"
)

// samplerFlags are the sampling settings of run.
type samplerFlags struct {
	s    generate.Sampler
	seed seedValue
}

func (sf *samplerFlags) register(f *pflag.FlagSet) {
	f.Float32Var(&sf.s.Temperature, "temperature", 1, "sampling temperature, 0 or more; 0 always takes the most likely token")
	f.Float32Var(&sf.s.TopP, "top-p", 0.85, "nucleus sampling, in (0, 1]: keep the most likely tokens up to this total probability (1: all)")
	f.Var(&sf.seed, "seed", "random seed, 0 to 2^64-1; the same seed gives the same text (default, and -1: a random seed, printed on stderr)")
}

// sampler checks the settings and returns the sampler, choosing a random
// seed when none was given; random reports that it did and that the seed
// matters (the temperature is not 0).
func (sf *samplerFlags) sampler() (s generate.Sampler, random bool, err error) {
	if err := sf.s.Check(); err != nil {
		return s, false, fmt.Errorf("--%w", err)
	}
	s = sf.s
	if sf.seed.set {
		s.Seed = sf.seed.v
	} else {
		s.Seed, random = rand.Uint64(), s.Temperature > 0
	}
	return s, random, nil
}

// seedValue is --seed: an unsigned 64-bit seed, or -1 for a random one.
type seedValue struct {
	v   uint64
	set bool // a seed was given (not -1)
}

func (v *seedValue) String() string {
	if !v.set {
		return "-1"
	}
	return strconv.FormatUint(v.v, 10)
}

func (v *seedValue) Type() string { return "SEED" }

func (v *seedValue) Set(s string) error {
	if s == "-1" {
		v.set = false
		return nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return fmt.Errorf("want an integer from 0 to %d, or -1 for a random seed", uint64(1<<64-1))
	}
	v.v, v.set = n, true
	return nil
}
