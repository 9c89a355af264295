// Fills n words from word off of a buffer with pseudo-random values (a hash
// of the word's index and a seed), for benchmarks of synthetic models:
//   mode 0: two float16 in [−scale, scale)
//   mode 1: float32 in [0, 1)
//   mode 2: random bits (quantized codes)
//   mode 3: Int8 block parameters (−scale, scale) as two float16
//   mode 4: NF4 absmax pairs (scale, scale) as two float16

struct Params { off: u32, n: u32, mode: u32, seed: u32, scale: f32, _0: u32, _1: u32, _2: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> buf: array<u32>;

fn hash(x: u32) -> u32 {
    var h = x * 0x9E3779B1u;
    h ^= h >> 16u;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13u;
    h *= 0xC2B2AE35u;
    h ^= h >> 16u;
    return h;
}

fn unit(h: u32) -> f32 { return f32(h >> 8u) * (1.0 / 16777216.0); }

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid;
    if i >= p.n {
        return;
    }
    let h = hash(i ^ hash(p.seed));
    var w = h;
    switch p.mode {
        case 0u: {
            let a = (unit(h) * 2.0 - 1.0) * p.scale;
            let b = (unit(hash(h)) * 2.0 - 1.0) * p.scale;
            w = pack2x16float(vec2<f32>(a, b));
        }
        case 1u: {
            w = bitcast<u32>(unit(h));
        }
        case 3u: {
            w = pack2x16float(vec2<f32>(-p.scale, p.scale));
        }
        case 4u: {
            w = pack2x16float(vec2<f32>(p.scale, p.scale));
        }
        default: {}
    }
    buf[p.off + i] = w;
}
