//! `column_sum.wgsl`: column sums of a row-major matrix (the bias gradients), split over
//! chunks of rows.

use super::{with_constants, LOOP_BUDGET};
use crate::error::{Error, Result};
use crate::gpu::{groups, Binding, Gpu, PipelineKey};

/// Rows per chunk: each of the 4 invocations of a column walks a quarter of them.
pub(crate) const ROWS_PER_SPLIT: usize = 32_768;

/// The WGSL source.
pub(crate) fn source() -> String {
    with_constants(&[], include_str!("../../shaders/column_sum.wgsl"))
}

const BINDINGS: [Binding; 4] = [
    Binding::Uniform,
    Binding::Read,
    Binding::ReadWrite,
    Binding::ReadWrite,
];

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    cols: u32,
    src_offset: u32,
    out_offset: u32,
    out2_offset: u32,
    accumulate: u32,
    rows_per_split: u32,
    splits: u32,
}

/// Chunks of `rows`.
pub(crate) fn splits(rows: usize) -> usize {
    rows.div_ceil(ROWS_PER_SPLIT).max(1)
}

/// Records `dst[out..out+cols] (+)= Σ_rows src[src_offset..]` (`[rows, cols]`) and the same
/// into `dst[out2..]`: one dispatch, two when the rows span several chunks.
pub(crate) fn encode(
    gpu: &Gpu,
    pass: &mut wgpu::ComputePass<'_>,
    (src, src_offset): (&wgpu::Buffer, usize),
    (rows, cols): (usize, usize),
    dst: &wgpu::Buffer,
    out_offsets: (usize, usize),
    accumulate: bool,
) -> Result<()> {
    let splits = splits(rows);
    let wg = [groups(cols, 64), splits as u32, 1];
    gpu.check_dispatch("the column sum", wg)?;
    let trips = loop_trips(rows);
    if trips > LOOP_BUDGET {
        return Err(Error::Limit {
            what: format!("a column sum over {rows} rows"),
            limit: "loop trips per invocation (llvmpipe stops loops after 65,535)",
            needed: trips,
            available: LOOP_BUDGET,
        });
    }
    let pipeline = |entry| {
        gpu.pipeline(
            PipelineKey::plain("column_sum", entry),
            &[&BINDINGS],
            0,
            source,
        )
    };
    let sum = pipeline("column_sum")?;
    let params = Params {
        rows: rows as u32,
        cols: cols as u32,
        src_offset: src_offset as u32,
        out_offset: out_offsets.0 as u32,
        out2_offset: out_offsets.1 as u32,
        accumulate: accumulate as u32,
        rows_per_split: ROWS_PER_SPLIT as u32,
        splits: splits as u32,
    };
    // Every partial is written before `sum_splits` reads it.
    let partials = gpu.scratch(
        "column sum partials",
        if splits > 1 { splits * cols } else { 1 },
    )?;
    let group = gpu.uniform_group(&sum, "column sum params", &params, &[src, dst, &partials])?;
    gpu.launch(pass, &sum, &group, wg);
    if splits > 1 {
        let finish = pipeline("sum_splits")?;
        gpu.launch(pass, &finish, &group, [groups(cols, 64), 1, 1]);
    }
    Ok(())
}

/// Trips of an invocation's loops: the walk over a chunk's rows, or over the chunks.
pub(crate) fn loop_trips(rows: usize) -> u64 {
    let per_lane = ROWS_PER_SPLIT.min(rows).div_ceil(4) as u64 + 1;
    per_lane.max(splits(rows) as u64 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Up to the most rows a storage binding can hold (2^29 f32 in 2 GiB), an invocation makes
    /// fewer loop trips than the budget; one long walk over the rows would make rows/4.
    #[test]
    fn an_invocation_stays_under_the_loop_budget() {
        for rows in [
            1,
            4,
            5,
            32_768,
            32_769,
            262_144,
            300_000,
            10_000_000,
            1 << 29,
        ] {
            assert!(loop_trips(rows) <= LOOP_BUDGET, "{rows} rows");
        }
        assert!(((1usize << 29) / 4) as u64 > LOOP_BUDGET);
    }
}
