// head_norm is RWKV-5…7's GroupNorm of one head (ln_x before its weight
// and bias, docs/rwkv-math.md) for the thread whose value is y: the
// including kernel has put the head's N values in its workgroup array
// sh_y (array<vec4<f32>, HQ>, channel i at [i / 4][i % 4]) and passed a
// barrier since. Sums over quads of channels: a chain of N/4 dependent
// additions where one value at a time made N, each behind a read of
// workgroup memory.
const HQ: u32 = N / 4u;

fn head_norm(y: f32) -> f32 {
    var m = vec4<f32>(0.0);
    for (var j = 0u; j < HQ; j++) {
        m += sh_y[j];
    }
    let mean = (m.x + m.y + m.z + m.w) / f32(N);
    var q = vec4<f32>(0.0);
    for (var j = 0u; j < HQ; j++) {
        let d = sh_y[j] - mean;
        q += d * d;
    }
    return (y - mean) / sqrt((q.x + q.y + q.z + q.w) / f32(N) + 64e-5);
}
