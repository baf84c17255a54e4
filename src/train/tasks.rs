//! Built-in tasks: a character-level language model on a text, and the adding problem.

use super::model::{Inputs, Targets};
use crate::error::{Error, Result};
use rand::{Rng, SeedableRng};

/// The text a character model trains on when no `--text` is given: public-domain prose
/// (the first letter of Mary Shelley's *Frankenstein*, 1818), about 7 KB.
pub const BUILTIN_TEXT: &str = include_str!("builtin_text.txt");

/// A text as token ids over its own character vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharCorpus {
    /// Distinct characters, sorted: token id = index.
    pub vocab: Vec<char>,
    /// The text as token ids.
    pub tokens: Vec<u32>,
}

impl CharCorpus {
    /// Tokenises `text` over its own characters.
    pub fn new(text: &str) -> Result<CharCorpus> {
        let mut vocab: Vec<char> = text.chars().collect();
        vocab.sort_unstable();
        vocab.dedup();
        let corpus = CharCorpus::with_vocab(text, vocab)?;
        if corpus.tokens.len() < 2 {
            return Err(Error::Invalid(
                "the text needs at least 2 characters".into(),
            ));
        }
        Ok(corpus)
    }

    /// Tokenises `text` over a given vocabulary (characters outside it are an error).
    pub fn with_vocab(text: &str, vocab: Vec<char>) -> Result<CharCorpus> {
        let tokens = text
            .chars()
            .map(|c| {
                vocab.binary_search(&c).map(|i| i as u32).map_err(|_| {
                    Error::Invalid(format!("character {c:?} is not in the vocabulary"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(CharCorpus { vocab, tokens })
    }

    /// A batch of `batch` random windows of `steps + 1` characters (inputs, then targets shifted
    /// by one), time-major. Windows wrap around the end of the text.
    pub fn batch(&self, rng: &mut impl Rng, steps: usize, batch: usize) -> (Inputs, Targets) {
        let n = self.tokens.len();
        let starts: Vec<usize> = (0..batch).map(|_| rng.random_range(0..n)).collect();
        let at = |b: usize, t: usize| self.tokens[(starts[b] + t) % n];
        let mut inputs = Vec::with_capacity(steps * batch);
        let mut targets = Vec::with_capacity(steps * batch);
        for t in 0..steps {
            for b in 0..batch {
                inputs.push(at(b, t));
                targets.push(at(b, t + 1));
            }
        }
        (Inputs::Tokens(inputs), Targets::Classes(targets))
    }
}

/// The adding problem (Hochreiter & Schmidhuber 1997): each step carries a value in [0, 1) and a
/// marker; exactly two steps are marked, one in each half; the target is the sum of the two
/// marked values. Always answering 1.0 scores MSE 1/6 ≈ 0.167 (the variance of the sum).
pub fn adding_batch(rng: &mut impl Rng, steps: usize, batch: usize) -> (Inputs, Targets) {
    let mut x = vec![0.0f32; steps * batch * 2];
    let mut y = vec![0.0f32; batch];
    let half = (steps / 2).max(1);
    for b in 0..batch {
        let first = rng.random_range(0..half);
        let second = if steps > 1 {
            rng.random_range(half.min(steps - 1)..steps)
        } else {
            0
        };
        for t in 0..steps {
            let v: f32 = rng.random();
            x[(t * batch + b) * 2] = v;
            if t == first || t == second {
                x[(t * batch + b) * 2 + 1] = 1.0;
                y[b] += v;
            }
        }
    }
    (Inputs::Features(x), Targets::Values(y))
}

/// MSE of always answering 1.0 on the adding problem.
pub const ADDING_BASELINE_MSE: f32 = 1.0 / 6.0;

/// The batch RNG of training step `step`: a function of the seed and the step alone, so that a
/// resumed run draws exactly the batches an uninterrupted one would.
pub fn step_rng(seed: u64, step: u64) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ step)
}
