// Column sums of a row-major [rows, cols] matrix, written (or added) to two destinations of the
// same output array (the bias gradients db_ih and db_hh are both Σ_rows dG), or to one when
// both offsets are equal.
struct ColumnSum {
    rows: u32,
    cols: u32,
    out_offset: u32,
    out2_offset: u32,
    accumulate: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> cp: ColumnSum;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

// Each workgroup sums 64 columns: 4 invocations per column split the rows, then combine in order.
var<workgroup> col_scratch: array<f32, 256>;

@compute @workgroup_size(64, 4, 1)
fn column_sum(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let col = wg.x * 64u + lid.x;
    var s = 0.0;
    if (col < cp.cols) {
        for (var r = lid.y; r < cp.rows; r += 4u) {
            s += src[r * cp.cols + col];
        }
    }
    col_scratch[lid.y * 64u + lid.x] = s;
    workgroupBarrier();
    if (lid.y != 0u || col >= cp.cols) {
        return;
    }
    let total = ((col_scratch[lid.x] + col_scratch[64u + lid.x]) + col_scratch[128u + lid.x])
        + col_scratch[192u + lid.x];
    if (cp.accumulate != 0u) {
        dst[cp.out_offset + col] += total;
    } else {
        dst[cp.out_offset + col] = total;
    }
    if (cp.out2_offset == cp.out_offset) {
        return; // one destination only
    }
    if (cp.accumulate != 0u) {
        dst[cp.out2_offset + col] += total;
    } else {
        dst[cp.out2_offset + col] = total;
    }
}
