// Int8 and NF4 block quantization of float16 data (packed two per u32).
// The arithmetic is the package's definition (doc.go); every float
// operation is a float32 add, subtract or multiply, never a multiply whose
// result is added to, so FMA contraction cannot change a result.
//
// Each thread owns a contiguous run of one block and reads it as vec4<u32>
// (eight values): Int8 8 threads × 16 values per block, 32 blocks per
// workgroup; NF4 2 threads × 32 values per block, 128 blocks per workgroup.
// A kernel runs in three steps:
//  1. every thread reduces its values (min and max, or absmax);
//  2. one thread per block combines the partial results and derives the
//     block's parameters once (Int8: min and 255/R by long division; NF4:
//     the 15 thresholds, turned into float16 keys);
//  3. every thread encodes its values and writes them as one vec4<u32>.
// Values are handled as vectors of the four low halves (values 0, 2, 4, 6
// of a vec4<u32>) and of the four high halves (1, 3, 5, 7), with no loops or
// dynamic indexing on the hot path, so that everything stays in registers.
// The workgroup's linear index is wid.x + wid.y * nwg.x (the host lays
// large dispatches out in 2-D).

// [0]: element count n; [1]: 0 (a zero the compiler cannot see, see code8).
@group(0) @binding(0) var<storage, read> info: array<u32>;
@group(0) @binding(1) var<storage, read> input: array<vec4<u32>>;         // float16, 8 per vec4
@group(0) @binding(2) var<storage, read_write> codes: array<vec4<u32>>;   // packed codes
@group(0) @binding(3) var<storage, read_write> params: array<u32>;        // float16 block parameters
@group(0) @binding(4) var<storage, read_write> status: atomic<u32>;       // 0, or ~(first non-finite index)
@group(0) @binding(5) var<storage, read> mids: array<f32>;                // NF4 midpoints (15)

// Step 1 results, one word per thread (Int8 minima in [0, 64), maxima in
// [64, 128), as float32 bits; NF4 absmax in [0, 64)).
var<workgroup> part: array<vec4<u32>, 128>;
// Step 2 results: Int8 (min, 255/R) per block.
var<workgroup> i8par: array<vec2<f32>, 32>;
// Step 2 results: NF4 thresholds as keys, 16 per block (the last unused),
// padded to 5 vec4 so that the blocks read by one warp use distinct banks.
var<workgroup> nfkey: array<vec4<i32>, 640>;

const LO = vec4<u32>(0xFFFFu);
const MAG = vec4<u32>(0x7FFFu);
const SIGN = vec4<u32>(0x80000000u);
const SIXTEEN = vec4<u32>(16u);

// f16_to_f32 widens float16 bits (the low 16 bits of h) exactly, without
// the hardware's half-float conversion or denormal handling: a normal value
// by moving its fields, a subnormal one as its integer significand times
// 2⁻²⁴ (an exact product). ±0 becomes +0.
fn f16_to_f32(h: u32) -> f32 {
    let a = h & 0x7FFFu;
    let nrm = bitcast<f32>((a << 13u) + 0x38000000u);
    let sub = f32(a) * 0x1p-24f;
    return bitcast<f32>(bitcast<u32>(select(nrm, sub, a < 0x400u)) | ((h & 0x8000u) << 16u));
}

// widen is f16_to_f32 of four magnitudes a (< 0x8000) with float32 sign
// bits, in fewer instructions: a subnormal is built as 2⁻¹⁴·(1 + m/1024)
// and 2⁻¹⁴ subtracted (exact). ±0 keeps its sign, which no result depends
// on; no step is a product, so nothing can fuse with the caller's.
fn widen(a: vec4<u32>, sign: vec4<u32>) -> vec4<f32> {
    let sub = a < vec4<u32>(0x400u);
    let bits = (a << vec4<u32>(13u)) + select(vec4<u32>(0x38000000u), vec4<u32>(0x38800000u), sub);
    let mag = bitcast<vec4<f32>>(bits) - select(vec4<f32>(0.0), vec4<f32>(0x1p-14f), sub);
    return bitcast<vec4<f32>>(bitcast<vec4<u32>>(mag) | sign);
}

// Values 0, 2, 4, 6 and 1, 3, 5, 7 of w, widened.
fn widen_lo(w: vec4<u32>) -> vec4<f32> {
    return widen(w & MAG, (w << SIXTEEN) & SIGN);
}

fn widen_hi(w: vec4<u32>) -> vec4<f32> {
    return widen((w >> SIXTEEN) & MAG, w & SIGN);
}

fn non_finite(h: u32) -> bool {
    return (h & 0x7C00u) == 0x7C00u;
}

// div_rn returns n/d rounded to nearest even, for positive normal n and d
// with a normal quotient, by integer long division of the significands:
// float division in shaders is only accurate to 2.5 ulp.
fn div_rn(n: f32, d: f32) -> f32 {
    let nb = bitcast<u32>(n);
    let db = bitcast<u32>(d);
    var mn = (nb & 0x7FFFFFu) | 0x800000u;
    let md = (db & 0x7FFFFFu) | 0x800000u;
    var e = i32(nb >> 23u) - i32(db >> 23u) + 127;
    if mn < md {
        mn = mn << 1u;
        e = e - 1;
    }
    var q = 1u;
    var r = mn - md;
    for (var i = 0u; i < 23u; i++) {
        r = r << 1u;
        q = q << 1u;
        if r >= md {
            r = r - md;
            q = q | 1u;
        }
    }
    let r2 = r << 1u;
    if r2 > md || (r2 == md && (q & 1u) == 1u) {
        q = q + 1u;
    }
    if q == 0x1000000u {
        q = 0x800000u;
        e = e + 1;
    }
    return bitcast<f32>((u32(e) << 23u) | (q & 0x7FFFFFu));
}

// keep returns w with its values from index cnt on replaced by fill: the
// values past the end of the data in the last block.
fn keep(w: vec4<u32>, cnt: i32, fill: u32) -> vec4<u32> {
    let lo = select(vec4<u32>(fill), w & LO, vec4<i32>(0, 2, 4, 6) < vec4<i32>(cnt));
    let hi = select(vec4<u32>(fill), w >> SIXTEEN, vec4<i32>(1, 3, 5, 7) < vec4<i32>(cnt));
    return lo | (hi << SIXTEEN);
}

// report records the first non-finite value among the first cnt values of
// w, which start at element e; the smallest index of all wins.
fn report(w: vec4<u32>, e: u32, cnt: i32) {
    for (var i = 0; i < min(cnt, 8); i++) {
        if non_finite(w[i / 2] >> (16u * u32(i % 2))) {
            atomicMax(&status, ~(e + u32(i)));
            return;
        }
    }
}

// ---- Int8, blocks of 128 ----

// to_f16 is the inverse of f16_to_f32 on its results (±0 → 0).
fn to_f16(x: f32) -> u32 {
    let b = bitcast<u32>(x);
    let ax = b & 0x7FFFFFFFu;
    let h = select(u32(bitcast<f32>(ax) * 16777216.0), (ax - 0x38000000u) >> 13u, ax >= 0x38800000u);
    return select(h, h | 0x8000u, b >= 0x80000000u && h != 0u);
}

// code8 quantizes four values: roundHalfEven((v − mn)·s) is the low byte of
// t + 2²³ (exact for 0 ≤ t < 2²²). The product must be rounded before the
// addition; OR-ing it with z = 0, which the compiler cannot know, keeps the
// two from being fused into an FMA.
fn code8(v: vec4<f32>, mn: f32, s: f32, z: u32) -> vec4<u32> {
    let t = (v - vec4<f32>(mn)) * vec4<f32>(s);
    return bitcast<vec4<u32>>(bitcast<vec4<f32>>(bitcast<vec4<u32>>(t) | vec4<u32>(z)) + vec4<f32>(8388608.0));
}

// codes8 packs the codes of the eight values of a vec4 (l: values 0, 2, 4,
// 6; h: 1, 3, 5, 7) into two words. A code word is 0x4B0000qq: shifting it
// left by 8 or more drops the 0x4B.
fn codes8(l: vec4<f32>, h: vec4<f32>, mn: f32, s: f32, z: u32) -> vec2<u32> {
    let pair = (code8(l, mn, s, z) & vec4<u32>(0xFFu)) | (code8(h, mn, s, z) << vec4<u32>(8u));
    return vec2<u32>(pair.x | (pair.y << 16u), pair.z | (pair.w << 16u));
}

@compute @workgroup_size(256)
fn int8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let n = info[0];
    let z = info[1];
    let nb = (n + 127u) / 128u;
    let wg = wid.x + wid.y * nwg.x;
    let lb = lid / 8u;             // block within the workgroup
    let blk = wg * 32u + lb;
    let e0 = blk * 128u + (lid % 8u) * 16u; // first element of this thread
    let v0 = e0 / 8u;                  // its first vec4

    // Step 1, on the widened values: float min and max are exact, and no
    // value is NaN (non-finite ones widen to magnitudes ≥ 2¹⁶).
    var l0 = vec4<f32>(0.0);
    var h0 = vec4<f32>(0.0);
    var l1 = vec4<f32>(0.0);
    var h1 = vec4<f32>(0.0);
    var lo = 1e30;
    var hi = -1e30;
    if blk < nb {
        var w0 = input[v0];
        var w1 = input[v0 + 1u];
        let cnt = i32(min(n - min(e0, n), 16u));
        if cnt < 16 {
            // The last block: fill the missing values with its first one,
            // which changes neither its minimum nor its maximum.
            let first = input[blk * 16u].x & 0xFFFFu;
            w0 = keep(w0, cnt, first);
            w1 = keep(w1, cnt - 8, first);
        }
        l0 = widen_lo(w0);
        h0 = widen_hi(w0);
        l1 = widen_lo(w1);
        h1 = widen_hi(w1);
        let mn = min(min(l0, h0), min(l1, h1));
        let mx = max(max(l0, h0), max(l1, h1));
        lo = min(min(mn.x, mn.y), min(mn.z, mn.w));
        hi = max(max(mx.x, mx.y), max(mx.z, mx.w));
        if lo <= -65536.0 || hi >= 65536.0 {
            report(w0, e0, cnt);
            report(w1, e0 + 8u, cnt - 8);
        }
    }
    part[lid / 4u][lid % 4u] = bitcast<u32>(lo);
    part[64u + lid / 4u][lid % 4u] = bitcast<u32>(hi);
    workgroupBarrier();

    // Step 2: thread b < 32 finishes block b of the workgroup.
    if lid < 32u {
        let pl0 = bitcast<vec4<f32>>(part[2u * lid]);
        let pl1 = bitcast<vec4<f32>>(part[2u * lid + 1u]);
        let ph0 = bitcast<vec4<f32>>(part[64u + 2u * lid]);
        let ph1 = bitcast<vec4<f32>>(part[64u + 2u * lid + 1u]);
        let l = min(pl0, pl1);
        let h = max(ph0, ph1);
        let min_h = to_f16(min(min(l.x, l.y), min(l.z, l.w)));
        let max_h = to_f16(max(max(h.x, h.y), max(h.z, h.w)));
        let b = wg * 32u + lid;
        if b < nb {
            params[b] = min_h | (max_h << 16u);
        }
        let mn = f16_to_f32(min_h);
        let r = f16_to_f32(max_h) - mn;
        var s = 0.0;
        if r > 0.0 {
            s = div_rn(255.0, r);
        }
        i8par[lid] = vec2<f32>(mn, s);
    }
    workgroupBarrier();

    // Step 3.
    if blk < nb {
        let p = i8par[lb];
        codes[v0 / 2u] = vec4<u32>(codes8(l0, h0, p.x, p.y, z), codes8(l1, h1, p.x, p.y, z));
    }
}

// ---- NF4, blocks of 64 ----

// absmax is the largest magnitude of the eight values of w, as bits.
fn absmax(w: vec4<u32>) -> vec4<u32> {
    return max(w & MAG, (w >> SIXTEEN) & MAG);
}

// Keys of four values (bits in the low halves of h), ordered like the
// values with −0 just below +0 (the CPU's key: −a−1 for negative a).
fn keys(h: vec4<i32>) -> vec4<i32> {
    return h ^ ((h >> vec4<u32>(31u)) & vec4<i32>(0x7FFF));
}

// floor16 and ceil16 give the float16 bits of the largest float16 ≤ x and
// of the smallest float16 ≥ x (> 0), from x's float32 bits b (x < 65520):
// on the float16 normal range by cutting float32 bits, below it by shifting
// the significand down to units of 2⁻²⁴. ceil16(0) is 1.
fn floor16(b: u32) -> i32 {
    let sh = min(126u - min(b >> 23u, 112u), 31u);
    let sig = (b & 0x7FFFFFu) | 0x800000u;
    return i32(select(sig >> sh, (b - 0x38000000u) >> 13u, b >= 0x38800000u));
}

fn ceil16(b: u32) -> i32 {
    let sh = min(126u - min(b >> 23u, 112u), 31u);
    let sig = (b & 0x7FFFFFu) | 0x800000u;
    return i32(select((sig + (1u << sh) - 1u) >> sh, (b - 0x38000000u + 0x1FFFu) >> 13u, b >= 0x38800000u));
}

// threshold turns v ≥ T (T = m·a, midpoint m's float32 threshold) into
// key(v) ≥ K for float16 v. T > 0: v ≥ T exactly for the float16 ≥ the
// smallest one ≥ T (at least 1, so that no zero passes when a = 0). T ≤ 0:
// exactly for v ≥ 0 and the negative v with |v| ≤ the largest float16
// ≤ |T| = f, whose keys are ≥ −f−1.
fn threshold(m: f32, a: f32) -> i32 {
    let t = m * a;
    if m > 0.0 {
        return max(ceil16(bitcast<u32>(t)), 1);
    }
    return -floor16(bitcast<u32>(abs(t))) - 1;
}

// nf4code counts the thresholds k0…k14 (sorted; q0 = k0…k3, …,
// q3 = k12…k14) that each key of kv reaches, by binary search.
fn nf4code(kv: vec4<i32>, q0: vec4<i32>, q1: vec4<i32>, q2: vec4<i32>, q3: vec4<i32>) -> vec4<u32> {
    let b3 = kv >= vec4<i32>(q1.w); // k7
    let b2 = kv >= select(vec4<i32>(q0.w), vec4<i32>(q2.w), b3); // k3, k11
    let b1 = kv >= select(select(vec4<i32>(q0.y), vec4<i32>(q1.y), b2),
                          select(vec4<i32>(q2.y), vec4<i32>(q3.y), b2), b3); // k1, k5, k9, k13
    let t0 = select(select(select(vec4<i32>(q0.x), vec4<i32>(q0.z), b1), select(vec4<i32>(q1.x), vec4<i32>(q1.z), b1), b2),
                    select(select(vec4<i32>(q2.x), vec4<i32>(q2.z), b1), select(vec4<i32>(q3.x), vec4<i32>(q3.z), b1), b2),
                    b3); // k0, k2, …, k14
    let b0 = kv >= t0;
    return select(vec4<u32>(0u), vec4<u32>(8u), b3) | select(vec4<u32>(0u), vec4<u32>(4u), b2) |
        select(vec4<u32>(0u), vec4<u32>(2u), b1) | select(vec4<u32>(0u), vec4<u32>(1u), b0);
}

// nibbles encodes the eight values of w, value i in bits 4i…4i+3, of which
// only the first cnt are kept (the others 0).
fn nibbles(w: vec4<u32>, q0: vec4<i32>, q1: vec4<i32>, q2: vec4<i32>, q3: vec4<i32>, cnt: i32) -> u32 {
    let lo = nf4code(keys(bitcast<vec4<i32>>(w << SIXTEEN) >> SIXTEEN), q0, q1, q2, q3);
    let hi = nf4code(keys(bitcast<vec4<i32>>(w) >> SIXTEEN), q0, q1, q2, q3);
    let pair = lo | (hi << vec4<u32>(4u));
    let word = pair.x | (pair.y << 8u) | (pair.z << 16u) | (pair.w << 24u);
    let c = u32(clamp(cnt, 0, 8));
    return word & select(0xFFFFFFFFu, (1u << (4u * c)) - 1u, c < 8u);
}

@compute @workgroup_size(256)
fn nf4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
    let n = info[0];
    let nb = (n + 63u) / 64u;
    let wg = wid.x + wid.y * nwg.x;
    let lb = lid / 2u;              // block within the workgroup
    let blk = wg * 128u + lb;
    let e0 = blk * 64u + (lid % 2u) * 32u; // first element of this thread
    let v0 = e0 / 8u;

    // Step 1. Values past the end become 0, which leaves absmax alone.
    var w0 = vec4<u32>(0u);
    var w1 = vec4<u32>(0u);
    var w2 = vec4<u32>(0u);
    var w3 = vec4<u32>(0u);
    var m = 0u;
    let cnt = i32(min(n - min(e0, n), 32u));
    if blk < nb {
        w0 = input[v0];
        w1 = input[v0 + 1u];
        w2 = input[v0 + 2u];
        w3 = input[v0 + 3u];
        if cnt < 32 {
            w0 = keep(w0, cnt, 0u);
            w1 = keep(w1, cnt - 8, 0u);
            w2 = keep(w2, cnt - 16, 0u);
            w3 = keep(w3, cnt - 24, 0u);
        }
        let x = max(max(absmax(w0), absmax(w1)), max(absmax(w2), absmax(w3)));
        m = max(max(x.x, x.y), max(x.z, x.w));
        if m >= 0x7C00u {
            report(w0, e0, cnt);
            report(w1, e0 + 8u, cnt - 8);
            report(w2, e0 + 16u, cnt - 16);
            report(w3, e0 + 24u, cnt - 24);
        }
    }
    part[lid / 4u][lid % 4u] = m;
    workgroupBarrier();

    // Step 2: thread b < 128 finishes block b of the workgroup; thread
    // p < 64 writes the parameter word of blocks 2p and 2p+1 (a missing odd
    // block's absmax is 0).
    if lid < 128u {
        let pq = part[lid / 2u];
        let pair = max(pq.xz, pq.yw); // absmax of blocks 2⌊lid/2⌋, 2⌊lid/2⌋+1
        let a_h = select(pair.x, pair.y, (lid & 1u) == 1u);
        if lid < 64u {
            let q = part[lid];
            let pw = wg * 64u + lid;
            if 2u * pw < nb {
                params[pw] = max(q.x, q.y) | (max(q.z, q.w) << 16u);
            }
        }
        let a = f16_to_f32(a_h);
        let o = lid * 5u;
        nfkey[o] = vec4<i32>(threshold(mids[0], a), threshold(mids[1], a), threshold(mids[2], a), threshold(mids[3], a));
        nfkey[o + 1u] = vec4<i32>(threshold(mids[4], a), threshold(mids[5], a), threshold(mids[6], a), threshold(mids[7], a));
        nfkey[o + 2u] = vec4<i32>(threshold(mids[8], a), threshold(mids[9], a), threshold(mids[10], a), threshold(mids[11], a));
        nfkey[o + 3u] = vec4<i32>(threshold(mids[12], a), threshold(mids[13], a), threshold(mids[14], a), 0);
    }
    workgroupBarrier();

    // Step 3. Nibbles past the end are 0.
    if blk < nb {
        let q0 = nfkey[lb * 5u];
        let q1 = nfkey[lb * 5u + 1u];
        let q2 = nfkey[lb * 5u + 2u];
        let q3 = nfkey[lb * 5u + 3u];
        codes[v0 / 4u] = vec4<u32>(nibbles(w0, q0, q1, q2, q3, cnt), nibbles(w1, q0, q1, q2, q3, cnt - 8),
                                   nibbles(w2, q0, q1, q2, q3, cnt - 16), nibbles(w3, q0, q1, q2, q3, cnt - 24));
    }
}
