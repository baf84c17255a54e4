// Column sums of a row-major [rows, cols] matrix (at src_offset), written (or added) to two
// destinations of the same output array (the bias gradients db_ih and db_hh are both Σ_rows
// dG), or to one when both offsets are equal.
//
// The rows are split into chunks of rows_per_split: one workgroup row of the grid per chunk,
// so that no invocation walks more than rows_per_split / 4 rows (llvmpipe stops an
// invocation's loops after 65,535 trips; long serial sums are slow on GPUs too). With one
// chunk, `column_sum` writes the destinations itself; with more, it writes one partial sum per
// chunk and `sum_splits` adds them up, chunk by chunk in order (deterministic, no atomics).

struct ColumnSum {
    rows: u32,
    cols: u32,
    src_offset: u32,
    out_offset: u32,
    out2_offset: u32,
    accumulate: u32,
    rows_per_split: u32,
    splits: u32,
}

@group(0) @binding(0) var<uniform> cp: ColumnSum;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>; // [splits, cols]

// Each workgroup sums 64 columns of one chunk: 4 invocations per column split the rows, then
// combine in order.
var<workgroup> col_scratch: array<f32, 256>;

fn write_total(col: u32, total: f32) {
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

@compute @workgroup_size(64, 4, 1)
fn column_sum(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let col = wg.x * 64u + lid.x;
    let first = wg.y * cp.rows_per_split;
    let end = min(cp.rows, first + cp.rows_per_split);
    var s = 0.0;
    if (col < cp.cols) {
        for (var r = first + lid.y; r < end; r += 4u) {
            s += src[cp.src_offset + r * cp.cols + col];
        }
    }
    col_scratch[lid.y * 64u + lid.x] = s;
    workgroupBarrier();
    if (lid.y != 0u || col >= cp.cols) {
        return;
    }
    let total = ((col_scratch[lid.x] + col_scratch[64u + lid.x]) + col_scratch[128u + lid.x])
        + col_scratch[192u + lid.x];
    if (cp.splits == 1u) {
        write_total(col, total);
    } else {
        partials[wg.y * cp.cols + col] = total;
    }
}

@compute @workgroup_size(64, 1, 1)
fn sum_splits(@builtin(global_invocation_id) gid: vec3<u32>) {
    let col = gid.x;
    if (col >= cp.cols) {
        return;
    }
    var total = 0.0;
    for (var s = 0u; s < cp.splits; s++) {
        total += partials[s * cp.cols + col];
    }
    write_total(col, total);
}
