// w[i·cols + j] += scale · Σₖ p[i·rank + k] · q[j·rank + k]
//
// One workgroup computes a 16×16 tile of w. The rank is walked in steps of
// 16 through workgroup memory; each element's sum still runs k = 0, 1, …
// in order, so it differs from the CPU's only by how the compiler rounds
// (it may fuse a multiply and an add).

struct Params {
    rows: u32,
    cols: u32,
    rank: u32,
    scale: f32,
}

@group(0) @binding(0) var<storage, read_write> w: array<f32>;
@group(0) @binding(1) var<storage, read> p: array<f32>;
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read> params: Params;

const T: u32 = 16u;

var<workgroup> tp: array<array<f32, 16>, 16>; // [row of the tile][k]
var<workgroup> tq: array<array<f32, 16>, 16>; // [column of the tile][k]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let rows = params.rows;
    let cols = params.cols;
    let rank = params.rank;
    let tiles_x = (cols + T - 1u) / T;
    let g = wid.x + wid.y * nwg.x;
    if (g >= tiles_x * ((rows + T - 1u) / T)) {
        return; // the whole workgroup: past the last tile
    }
    let i0 = (g / tiles_x) * T;
    let j0 = (g % tiles_x) * T;
    var d: f32 = 0.0;
    for (var k0: u32 = 0u; k0 < rank; k0 += T) {
        let k = k0 + lid.x;
        var a: f32 = 0.0;
        var b: f32 = 0.0;
        if (i0 + lid.y < rows && k < rank) {
            a = p[(i0 + lid.y) * rank + k];
        }
        if (j0 + lid.y < cols && k < rank) {
            b = q[(j0 + lid.y) * rank + k];
        }
        tp[lid.y][lid.x] = a;
        tq[lid.y][lid.x] = b;
        workgroupBarrier();
        let n = min(T, rank - k0);
        for (var kk: u32 = 0u; kk < n; kk++) {
            d = d + tp[lid.y][kk] * tq[lid.x][kk];
        }
        workgroupBarrier();
    }
    let i = i0 + lid.y;
    let j = j0 + lid.x;
    if (i < rows && j < cols) {
        let idx = i * cols + j;
        w[idx] = w[idx] + params.scale * d;
    }
}
