// RWKV-4's time mixing after the products (docs/rwkv-math.md, v4), one
// thread per channel over a segment's tokens in order, in the stable form
// whose state (aa, bb, pp) keeps aa and bb scaled by exp(−pp):
//   q = max(pp, u + k); wkv = (e^(pp−q)·aa + e^(u+k−q)·v) / (e^(pp−q)·bb + e^(u+k−q))
//   y = r·wkv (r through the sigmoid already)
//   q' = max(pp + w, k); aa ← e^(pp+w−q')·aa + e^(k−q')·v; bb likewise with 1; pp ← q'
// with w = −exp(time_decay) (the arena holds it) and u = time_first.

struct Params {
    r: u32,      // activation offsets, [T][C] each
    k: u32,
    v: u32,
    y: u32,
    stride: u32, // floats per state slot
    mem: u32,    // offset of aa within a slot (bb, pp follow, C each)
    decay: u32,  // arena offsets (float32)
    first: u32,
    slot0: u32,  // the first state slot of the bound buffer, which holds
    nslots: u32, // nslots: this dispatch serves the segments of those only
    _0: u32,
    _1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> wt: array<u32>;
@group(0) @binding(3) var<storage, read_write> act: array<f32>;
@group(0) @binding(4) var<storage, read_write> st: array<f32>;

fn wf(i: u32) -> f32 { return bitcast<f32>(wt[i]); }

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let sg = segment(wid.x, p.slot0, p.nslots);
    let c = wid.y * 64u + lid;
    if !sg.ok || c >= C {
        return;
    }
    let sb = sg.slot * p.stride + p.mem + c;
    var aa = st[sb];
    var bb = st[sb + C];
    var pp = st[sb + 2u * C];
    let w = wf(p.decay + c);
    let u = wf(p.first + c);
    for (var t = sg.start; t < sg.end; t++) {
        let o = t * C + c;
        let k = act[p.k + o];
        let v = act[p.v + o];
        var ww = u + k;
        var q = max(pp, ww);
        var e1 = exp(pp - q);
        var e2 = exp(ww - q);
        act[p.y + o] = act[p.r + o] * (e1 * aa + e2 * v) / (e1 * bb + e2);
        ww = pp + w;
        q = max(ww, k);
        e1 = exp(ww - q);
        e2 = exp(k - q);
        aa = e1 * aa + e2 * v;
        bb = e1 * bb + e2;
        pp = q;
    }
    st[sb] = aa;
    st[sb + C] = bb;
    st[sb + 2u * C] = pp;
}
