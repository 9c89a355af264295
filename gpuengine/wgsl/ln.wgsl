// LayerNorm over the C values of a row, one workgroup of WG threads (a
// power of two, from the host) per row, thread lid taking the channels
// lid + e·WG. Sums reduce in workgroup memory, up to four rows at once (one
// per component).

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
// the rows rows_at gives (each kernel defines it), in two passes over them
// (the rows are read again from memory, not kept in per-thread arrays,
// which would live in slow local memory).
fn ln_stats(lid: u32) -> array<vec4<f32>, 2> {
    var s = vec4<f32>(0.0);
    for (var c = lid; c < C; c += WG) {
        s += rows_at(c);
    }
    let mean = reduce4(s, lid) / f32(C);
    var q = vec4<f32>(0.0);
    for (var c = lid; c < C; c += WG) {
        let d = rows_at(c) - mean;
        q += d * d;
    }
    let inv = 1.0 / sqrt(reduce4(q, lid) / f32(C) + 1e-5);
    return array<vec4<f32>, 2>(mean, inv);
}
