//! `wgpu-lstm sample`: text from a character-model checkpoint.

use super::options::CellArgs;
use rand::SeedableRng;
use std::path::PathBuf;
use std::process::ExitCode;
use wgpu_lstm::train::{CharCorpus, Checkpoint, Trainer};
use wgpu_lstm::{Gpu, Nonlinearity};

#[derive(clap::Args)]
pub(crate) struct SampleArgs {
    /// A checkpoint written by `train --task chars`.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Text to start from (characters must be in the model's vocabulary).
    #[arg(long, default_value = "\n")]
    prompt: String,
    /// Softmax temperature; 0 always takes the most likely character.
    #[arg(long, default_value_t = 0.8)]
    temperature: f32,
    /// Characters to generate.
    #[arg(long, default_value_t = 300)]
    length: usize,
    /// Seed of the sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Adapter to use.
    #[arg(long)]
    device: Option<String>,
    /// The checkpoint's model (given, it must match; the checkpoint records all of it).
    #[command(flatten)]
    cell: CellArgs,
}

pub(crate) fn run(a: &SampleArgs) -> wgpu_lstm::Result<ExitCode> {
    let gpu = Gpu::with_adapter(a.device.as_deref())?;
    let checkpoint = Checkpoint::read(&a.checkpoint, None)?;
    let vocab = checkpoint
        .vocab()
        .ok_or_else(|| {
            wgpu_lstm::Error::Invalid(format!(
                "{} is not a character model",
                a.checkpoint.display()
            ))
        })?
        .to_vec();
    let c = &checkpoint.config;
    let source = a.checkpoint.display().to_string();
    a.cell.check(c.cell, c.proj_size, &source)?;
    if let Some(n) = a.cell.nonlinearity.map(Nonlinearity::from) {
        if n != c.nonlinearity {
            return Err(wgpu_lstm::Error::Invalid(format!(
                "--nonlinearity {n:?}: {source} was trained with {:?}",
                c.nonlinearity
            )));
        }
    }
    let trainer = Trainer::resume(&gpu, &checkpoint, 1)?;
    let prompt = a.prompt.replace("\\n", "\n");
    let tokens = CharCorpus::with_vocab(&prompt, vocab.clone())?.tokens;
    let mut rng = rand::rngs::StdRng::seed_from_u64(a.seed);
    let generated = trainer
        .model()
        .generate(&tokens, a.length, a.temperature, &mut rng)?;
    let text: String = generated.iter().map(|&t| vocab[t as usize]).collect();
    println!("{prompt}{text}");
    Ok(ExitCode::SUCCESS)
}
