//! The decoder-only transformer shared by the Llama, Qwen2 and Qwen3 families: embedding,
//! blocks of (RMS norm → grouped-query attention with RoPE → RMS norm → SwiGLU MLP), final
//! norm, output head. The forward runs a batch of sequences at once.

use perch_mlx::fast::{self, RopeOffset};
use perch_mlx::{Array, Dtype};

use crate::batch::BatchLayout;
use crate::config::{Architecture, ModelConfig};
use crate::kv_cache::LayerCache;
use crate::nn::{Embedding, Linear, RmsNorm, SideBySide};
use crate::rope::{Rope, RopeAngles};
use crate::weights::Weights;
use crate::{EngineError, Result};

struct Attention {
    /// The query, key and value projections.
    qkv: SideBySide,
    o_proj: Linear,
    q_norm: Option<RmsNorm>,
    k_norm: Option<RmsNorm>,
}

struct Mlp {
    /// The gate and up projections.
    gate_up: SideBySide,
    down_proj: Linear,
}

struct Block {
    input_layernorm: RmsNorm,
    attention: Attention,
    post_attention_layernorm: RmsNorm,
    mlp: Mlp,
}

/// A loaded transformer, ready to run forward passes.
pub struct Transformer {
    config: ModelConfig,
    embed_tokens: Embedding,
    blocks: Vec<Block>,
    norm: RmsNorm,
    lm_head: Option<Linear>,
    rope: Rope,
    dtype: Dtype,
}

impl Transformer {
    /// Builds the model from `weights` (Hugging Face names) as `config` describes.
    pub fn build(config: ModelConfig, weights: &mut Weights) -> Result<Transformer> {
        let eps = config.rms_norm_eps;
        let qk_norm = config.architecture == Architecture::Qwen3;
        let mut blocks = Vec::with_capacity(config.num_hidden_layers as usize);
        for i in 0..config.num_hidden_layers {
            let p = format!("model.layers.{i}");
            let norm = |w: &mut Weights, name: &str| -> Result<Option<RmsNorm>> {
                if qk_norm {
                    Ok(Some(w.rms_norm(&format!("{p}.self_attn.{name}"), eps)?))
                } else {
                    Ok(None)
                }
            };
            blocks.push(Block {
                input_layernorm: weights.rms_norm(&format!("{p}.input_layernorm"), eps)?,
                attention: Attention {
                    qkv: weights.side_by_side(
                        &["q_proj", "k_proj", "v_proj"].map(|n| format!("{p}.self_attn.{n}")),
                    )?,
                    o_proj: weights.linear(&format!("{p}.self_attn.o_proj"))?,
                    q_norm: norm(weights, "q_norm")?,
                    k_norm: norm(weights, "k_norm")?,
                },
                post_attention_layernorm: weights
                    .rms_norm(&format!("{p}.post_attention_layernorm"), eps)?,
                mlp: Mlp {
                    gate_up: weights
                        .side_by_side(&["gate_proj", "up_proj"].map(|n| format!("{p}.mlp.{n}")))?,
                    down_proj: weights.linear(&format!("{p}.mlp.down_proj"))?,
                },
            });
        }
        let embed_tokens = weights.embedding("model.embed_tokens")?;
        let lm_head = if config.tie_word_embeddings || !weights.contains("lm_head.weight") {
            None
        } else {
            Some(weights.linear("lm_head")?)
        };
        let norm = weights.rms_norm("model.norm", eps)?;
        let rope = Rope::new(&config, weights.dtype())?;
        Ok(Transformer {
            dtype: weights.dtype(),
            config,
            embed_tokens,
            blocks,
            norm,
            lm_head,
            rope,
        })
    }

    /// The configuration the model was built from.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The dtype activations are computed in.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// A fresh, empty cache (one entry per layer).
    pub fn new_cache(&self) -> Vec<LayerCache> {
        (0..self.blocks.len())
            .map(|_| LayerCache::default())
            .collect()
    }

    /// Bytes of the model's parameters.
    pub fn nbytes(&self) -> usize {
        let norm = |n: &RmsNorm| n.weight.nbytes();
        let blocks: usize = self
            .blocks
            .iter()
            .map(|b| {
                let a = &b.attention;
                norm(&b.input_layernorm)
                    + norm(&b.post_attention_layernorm)
                    + a.qkv.nbytes()
                    + a.o_proj.nbytes()
                    + a.q_norm.as_ref().map_or(0, norm)
                    + a.k_norm.as_ref().map_or(0, norm)
                    + b.mlp.gate_up.nbytes()
                    + b.mlp.down_proj.nbytes()
            })
            .sum();
        blocks
            + self.embed_tokens.nbytes()
            + norm(&self.norm)
            + self.lm_head.as_ref().map_or(0, Linear::nbytes)
    }

    /// Bytes of key/value cache per position and sequence (all layers, keys and values).
    pub fn kv_bytes_per_token(&self) -> usize {
        let c = &self.config;
        2 * (c.num_hidden_layers * c.num_key_value_heads * c.head_dim) as usize
            * self.dtype.size_of()
    }

    /// Runs `ids` (`[batch, len]`, after whatever `cache` already holds) through the model
    /// and returns logits: `[batch, len, vocab]` when `all_positions`, else only the last
    /// position's, `[batch, 1, vocab]`.
    pub fn forward(
        &self,
        ids: &Array,
        cache: &mut [LayerCache],
        layout: &BatchLayout,
        all_positions: bool,
    ) -> Result<Array> {
        let h = self.hidden_states(ids, cache, layout, all_positions)?;
        match &self.lm_head {
            Some(head) => head.forward(&h),
            None => self.embed_tokens.as_linear(&h),
        }
    }

    /// The final hidden states (after the last norm, before the output head) of `ids`,
    /// `[batch, len, hidden]` when `all_positions`, else the last position's,
    /// `[batch, 1, hidden]`: what embeddings pool.
    pub fn hidden_states(
        &self,
        ids: &Array,
        cache: &mut [LayerCache],
        layout: &BatchLayout,
        all_positions: bool,
    ) -> Result<Array> {
        let shape = ids.shape();
        let (batch, len) = (shape[0], shape[1]);
        let offset = cache.first().map_or(0, LayerCache::offset);
        let positions = layout.step(offset, len)?;
        let rope_offset = match &positions.rope_offsets {
            Some(per_row) => RopeOffset::PerRow(per_row),
            None => RopeOffset::Uniform(positions.offset),
        };
        let mask = positions.attention_mask();
        let angles = self.rope.angles(rope_offset, len)?;

        let mut h = self.embed_tokens.lookup(ids)?;
        for (block, layer_cache) in self.blocks.iter().zip(cache.iter_mut()) {
            let normed = block.input_layernorm.forward(&h)?;
            let attended = self.attention(
                &block.attention,
                &normed,
                batch,
                len,
                layer_cache,
                &angles,
                mask,
            )?;
            h = h.add(&attended)?;
            let normed = block.post_attention_layernorm.forward(&h)?;
            let mlp = &block.mlp;
            let [gate, up]: [Array; 2] = mlp
                .gate_up
                .forward(&normed)?
                .try_into()
                .map_err(|_| EngineError::InvalidModel("an MLP has two projections".into()))?;
            let gated = gate.silu()?.multiply(&up)?;
            h = h.add(&mlp.down_proj.forward(&gated)?)?;
        }
        if !all_positions && len > 1 {
            let hidden = self.config.hidden_size;
            h = h.slice(&[0, len - 1, 0], &[batch, len, hidden], &[1, 1, 1])?;
        }
        self.norm.forward(&h)
    }

    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        attn: &Attention,
        x: &Array,
        batch: i32,
        len: i32,
        cache: &mut LayerCache,
        angles: &RopeAngles<'_>,
        mask: fast::AttentionMask<'_>,
    ) -> Result<Array> {
        let c = &self.config;
        // `[batch, len, n × head_dim]` → `[batch, n, len, head_dim]` (one reshape when
        // decoding a single position).
        let heads = |a: &Array, n: i32| -> Result<Array> {
            if len == 1 {
                return Ok(a.reshape(&[batch, n, 1, c.head_dim])?);
            }
            Ok(a.reshape(&[batch, len, n, c.head_dim])?
                .transpose(&[0, 2, 1, 3])?)
        };
        let (hq, hkv) = (c.num_attention_heads, c.num_key_value_heads);
        let [q, k, v]: [Array; 3] = attn
            .qkv
            .forward(x)?
            .try_into()
            .map_err(|_| EngineError::InvalidModel("attention has three projections".into()))?;
        let (q, k, v) = (heads(&q, hq)?, heads(&k, hkv)?, heads(&v, hkv)?);
        let (q, k) = match (&attn.q_norm, &attn.k_norm) {
            (Some(qn), Some(kn)) => (qn.forward(&q)?, kn.forward(&k)?),
            _ => (q, k),
        };
        let q = self.rope.apply(&q, angles)?;
        let k = self.rope.apply(&k, angles)?;
        let (keys, values) = cache.append(&k, &v)?;
        let scale = (c.head_dim as f32).powf(-0.5);
        let out = fast::scaled_dot_product_attention(&q, &keys, &values, scale, mask)?;
        let width = hq * c.head_dim;
        let out = if len == 1 {
            out.reshape(&[batch, 1, width])?
        } else {
            out.transpose(&[0, 2, 1, 3])?
                .reshape(&[batch, len, width])?
        };
        attn.o_proj.forward(&out)
    }
}
