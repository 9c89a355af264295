// RWKV-7's recurrence over a segment of several spans, second of three
// kernels (see recur7.wgsl): from the segment's state S, each span's
// starting state in turn, S ← S·P + U of the span before, written in the
// place of its U. One workgroup per (segment, head, block of RB rows) of
// RB·N/4 threads: thread li makes columns 4·jq…4·jq+3 of row rb·RB + r,
// jq = li mod N/4, r = li / (N/4), and the rows are independent (row i of
// S·P is S[i]·P). The block's rows and the span's P wait in workgroup
// memory; the next span's P is fetched into registers while this span's is
// used.

struct Params {
    scratch: u32, // activation offset of the spans' slots
    stride: u32,  // floats per state slot
    mem: u32,     // offset of S within a slot
    slot0: u32,   // the first state slot of the bound buffer, which holds
    nslots: u32,  // nslots: this dispatch serves the segments of those only
    _0: u32,
    _1: u32,
    _2: u32,
}

const RB: u32 = 16u;
const H: u32 = C / N;
const THREADS: u32 = RB * N4;
const PQ: u32 = N / 16u; // vec4s of P each thread fetches
const P4: u32 = N * N4;
const SR: u32 = RB * N;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(3) var<storage, read_write> act: array<f32>;
@group(0) @binding(4) var<storage, read_write> st: array<f32>;

var<workgroup> sh_p: array<vec4<f32>, P4>; // P[l][4·jq…] at l·N4 + jq
var<workgroup> sh_s: array<f32, SR>; // the block's rows of S

// Part z (0 U, 1 P) of head h of scratch slot x (see recur7.wgsl).
fn sc_base(x: u32, z: u32, h: u32) -> u32 { return p.scratch + (2u * x + z) * C * N + h * N * N; }

fn ld(o: u32) -> vec4<f32> { return vec4<f32>(act[o], act[o + 1u], act[o + 2u], act[o + 3u]); }

// fetch_p reads this thread's vec4s of a span's P, consecutive across threads.
fn fetch_p(b: u32, li: u32) -> array<vec4<f32>, 4> {
    var f: array<vec4<f32>, 4>;
    f[0] = ld(b + 4u * li);
    if PQ > 1u {
        f[1] = ld(b + 4u * (li + THREADS));
    }
    if PQ > 2u {
        f[2] = ld(b + 4u * (li + 2u * THREADS));
    }
    if PQ > 3u {
        f[3] = ld(b + 4u * (li + 3u * THREADS));
    }
    return f;
}

fn put_p(f: array<vec4<f32>, 4>, li: u32) {
    sh_p[li] = f[0];
    if PQ > 1u {
        sh_p[li + THREADS] = f[1];
    }
    if PQ > 2u {
        sh_p[li + 2u * THREADS] = f[2];
    }
    if PQ > 3u {
        sh_p[li + 3u * THREADS] = f[3];
    }
}

fn put_s(r: u32, jq: u32, s: vec4<f32>) {
    let o = r * N + 4u * jq;
    sh_s[o] = s.x;
    sh_s[o + 1u] = s.y;
    sh_s[o + 2u] = s.z;
    sh_s[o + 3u] = s.w;
}

@compute @workgroup_size(THREADS)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let h = wid.y % H;
    let rb = wid.y / H;
    let sg = segment(wid.x, p.slot0, p.nslots);
    if !sg.ok || sg.end == sg.start {
        return;
    }
    let k0 = seg_span0(wid.x);
    if span_word(k0, 3u) == NO_SCRATCH {
        return; // one span: recur7.wgsl starts it from the state
    }
    var n = 1u; // the segment's spans
    while span_word(k0 + n - 1u, 2u) < sg.end {
        n++;
    }
    let r = li / N4;
    let jq = li % N4;
    let i = rb * RB + r;
    var s = ld4(sg.slot * p.stride + p.mem + h * N * N, i, 4u * jq);
    put_s(r, jq, s);
    var next = fetch_p(sc_base(span_word(k0, 3u), 1u, h), li);
    for (var m = 0u; m < n; m++) {
        let ub = sc_base(span_word(k0 + m, 3u), 0u, h) + i * N + 4u * jq;
        if m + 1u == n {
            act[ub] = s.x;
            act[ub + 1u] = s.y;
            act[ub + 2u] = s.z;
            act[ub + 3u] = s.w;
            break;
        }
        let u = ld(ub);
        act[ub] = s.x;
        act[ub + 1u] = s.y;
        act[ub + 2u] = s.z;
        act[ub + 3u] = s.w;
        put_p(next, li);
        workgroupBarrier();
        if m + 2u < n {
            next = fetch_p(sc_base(span_word(k0 + m + 1u, 3u), 1u, h), li);
        }
        var a = u;
        for (var l = 0u; l < N; l++) {
            a = fma(vec4<f32>(sh_s[r * N + l]), sh_p[l * N4 + jq], a);
        }
        workgroupBarrier();
        s = a;
        put_s(r, jq, s);
    }
}
