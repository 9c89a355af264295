package main

import (
	"fmt"
	"io"

	"github.com/rwkvkit/rwkvkit/serialize"
)

// printProvenance says how an artifact was made.
func printProvenance(w io.Writer, p *serialize.Provenance) {
	if p.Tool != "" { // states saved by run record none
		fmt.Fprintf(w, "made by:    %s %s\n", p.Tool, p.ToolVersion)
	}
	for _, s := range p.Sources {
		fmt.Fprintf(w, "source:     %s (%d bytes, sha256 %s)\n", s.Name, s.Size, s.SHA256)
	}
	for _, l := range p.LoRAs {
		fmt.Fprintf(w, "LoRA:       %s at alpha %g (%d bytes, sha256 %s)\n", l.Name, l.Alpha, l.Size, l.SHA256)
	}
	for _, lp := range p.LoRAPatterns {
		fmt.Fprintf(w, "LoRA alpha: %g for tensors matching %q\n", lp.Alpha, lp.Regexp)
	}
	if q := p.Quantization; q.Plan != "" {
		fmt.Fprintf(w, "quantized:  %s, on %s\n", q.Plan, q.Device)
	} else if q.Int8 != "" || q.NF4 != "" || q.SF4 != "" { // written before plans were recorded
		sf4 := ""
		if q.SF4 != "" {
			sf4 = fmt.Sprintf(", SF4 layers %q", q.SF4)
		}
		fmt.Fprintf(w, "quantized:  Int8 layers %q, NF4 layers %q%s, on %s\n", q.Int8, q.NF4, sf4, q.Device)
	}
}
