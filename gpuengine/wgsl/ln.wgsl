// LayerNorm over the C values of a row, one workgroup of WG threads (a
// power of two, from the host) per row, each thread holding EPT values
// (c = lid + e·WG). Sums reduce in workgroup memory, up to
// four rows at once (one per component).

const EPT: u32 = (C + WG - 1u) / WG;

@group(0) @binding(2) var<storage, read> wt: array<vec4<u32>>;

var<workgroup> red: array<vec4<f32>, WG>;

fn wf(i: u32) -> f32 { return bitcast<f32>(wt[i >> 2u][i & 3u]); }

fn reduce4(v: vec4<f32>, lid: u32) -> vec4<f32> {
    red[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if lid < s {
            red[lid] += red[lid + s];
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

// ln_stats returns per component the mean and 1/sqrt(variance + 1e-5) of
// rows whose values this thread holds in v (zero past C).
fn ln_stats(values: array<vec4<f32>, EPT>, lid: u32) -> array<vec4<f32>, 2> {
    var v = values; // a value array may only be indexed by constants
    var s = vec4<f32>(0.0);
    for (var e = 0u; e < EPT; e++) {
        s += v[e];
    }
    let mean = reduce4(s, lid) / f32(C);
    var q = vec4<f32>(0.0);
    for (var e = 0u; e < EPT; e++) {
        if lid + e * WG < C {
            let d = v[e] - mean;
            q += d * d;
        }
    }
    let inv = 1.0 / sqrt(reduce4(q, lid) / f32(C) + 1e-5);
    return array<vec4<f32>, 2>(mean, inv);
}
