// Int8 and NF4 block quantization of float16 data (packed two per u32).
// The arithmetic is the package's definition (doc.go); every float
// operation is a float32 add, subtract or multiply, never a multiply whose
// result is added to, so FMA contraction cannot change a result.
//
// A workgroup of 256 threads covers 8 Int8 blocks (32 threads × 4 values)
// or 32 NF4 blocks (8 threads × 8 values). Its linear index is
// wid.x + wid.y * nwg.x (the host lays large dispatches out in 2-D).

@group(0) @binding(0) var<storage, read> info: array<u32>;            // [0]: element count n
@group(0) @binding(1) var<storage, read> input: array<u32>;           // float16 pairs
@group(0) @binding(2) var<storage, read_write> codes: array<u32>;     // packed codes
@group(0) @binding(3) var<storage, read_write> params: array<u32>;    // float16 block parameters
@group(0) @binding(4) var<storage, read_write> status: atomic<u32>;   // 0, or ~(first non-finite index)
@group(0) @binding(5) var<storage, read> mids: array<f32>;            // NF4 midpoints (15)

var<workgroup> red_lo: array<i32, 256>;  // per-thread partial results
var<workgroup> red_hi: array<i32, 256>;

// f16_to_f32 widens float16 bits exactly using integer operations only, so
// that neither the hardware's half-float conversion nor denormal flushing
// is involved. ±0 becomes +0.
fn f16_to_f32(h: u32) -> f32 {
    let a = h & 0x7FFFu;
    if a == 0u {
        return 0.0;
    }
    let sign = (h & 0x8000u) << 16u;
    let e = a >> 10u;
    let m = a & 0x3FFu;
    if e == 0u {
        // subnormal m·2⁻²⁴ is a normal float32
        let p = firstLeadingBit(m);
        return bitcast<f32>(sign | ((p + 103u) << 23u) | ((m << (23u - p)) & 0x7FFFFFu));
    }
    return bitcast<f32>(sign | ((e + 112u) << 23u) | (m << 13u));
}

// key orders float16 bits like their values (±0 → 0).
fn key(h: u32) -> i32 {
    let m = i32(h & 0x7FFFu);
    return select(m, -m, (h & 0x8000u) != 0u);
}

fn unkey(k: i32) -> u32 {
    return select(u32(k), 0x8000u | u32(-k), k < 0);
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

fn flag(i: u32) {
    atomicMax(&status, ~i);
}

fn half(w: u32, j: u32) -> u32 {
    return (w >> (16u * j)) & 0xFFFFu;
}

@compute @workgroup_size(256)
fn int8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let n = info[0];
    let nb = (n + 127u) / 128u;
    let blk = (wid.x + wid.y * nwg.x) * 8u + lid / 32u;
    let j = lid % 32u;
    let e0 = blk * 128u + j * 4u;

    var h: array<u32, 4>;
    var lo = 0x10000;
    var hi = -0x10000;
    for (var i = 0u; i < 4u; i++) {
        let e = e0 + i;
        if blk < nb && e < n {
            h[i] = half(input[e / 2u], e % 2u);
            if non_finite(h[i]) {
                flag(e);
            }
            let k = key(h[i]);
            lo = min(lo, k);
            hi = max(hi, k);
        }
    }
    // One barrier, then every thread combines its block's 32 partial
    // results itself: barriers are what software Vulkan is slow at, and
    // reading the same shared word from all threads is cheap on GPUs.
    red_lo[lid] = lo;
    red_hi[lid] = hi;
    workgroupBarrier();
    let base = lid - j;
    for (var i = 0u; i < 32u; i++) {
        lo = min(lo, red_lo[base + i]);
        hi = max(hi, red_hi[base + i]);
    }
    let min_h = unkey(lo);
    let max_h = unkey(hi);
    if blk >= nb {
        return;
    }
    let mn = f16_to_f32(min_h);
    let r = f16_to_f32(max_h) - mn;
    var s = 0.0;
    if r != 0.0 {
        s = div_rn(255.0, r);
    }
    var word = 0u;
    for (var i = 0u; i < 4u; i++) {
        if e0 + i < n {
            let d = f16_to_f32(h[i]) - mn;
            let t = d * s;
            word = word | (min(u32(round(t)), 255u) << (8u * i));
        }
    }
    codes[blk * 32u + j] = word;
    if j == 0u {
        params[blk] = min_h | (max_h << 16u);
    }
}

@compute @workgroup_size(256)
fn nf4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
    let n = info[0];
    let nb = (n + 63u) / 64u;
    let blk = (wid.x + wid.y * nwg.x) * 32u + lid / 8u;
    let j = lid % 8u;
    let e0 = blk * 64u + j * 8u;

    var h: array<u32, 8>;
    var amax = 0;
    for (var i = 0u; i < 8u; i++) {
        let e = e0 + i;
        if blk < nb && e < n {
            h[i] = half(input[e / 2u], e % 2u);
            if non_finite(h[i]) {
                flag(e);
            }
            amax = max(amax, i32(h[i] & 0x7FFFu));
        }
    }
    red_hi[lid] = amax;
    workgroupBarrier();
    let base = lid - j;
    var amax_next = 0; // the next block's, for the shared parameter word
    for (var i = 0u; i < 8u; i++) {
        amax = max(amax, red_hi[base + i]);
        if base + 8u + i < 256u {
            amax_next = max(amax_next, red_hi[base + 8u + i]);
        }
    }
    let a_h = u32(amax);
    if blk >= nb {
        return;
    }
    let a = f16_to_f32(a_h);
    var t: array<f32, 15>;
    for (var k = 0u; k < 15u; k++) {
        t[k] = mids[k] * a;
    }
    var word = 0u;
    for (var i = 0u; i < 8u; i++) {
        if e0 + i < n {
            var c = 7u;
            if a_h != 0u {
                let v = f16_to_f32(h[i]);
                c = 0u;
                for (var k = 0u; k < 15u; k++) {
                    c = c + select(0u, 1u, v >= t[k]);
                }
            }
            word = word | (c << (4u * i));
        }
    }
    codes[blk * 8u + j] = word;
    // Two blocks share a parameter word: the even block's first thread
    // writes both (the odd block's absmax is 0 when it does not exist).
    if j == 0u && blk % 2u == 0u {
        params[blk / 2u] = a_h | (u32(amax_next) << 16u);
    }
}
