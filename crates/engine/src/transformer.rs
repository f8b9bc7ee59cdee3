//! The decoder-only transformer shared by the Llama, Qwen2 and Qwen3 families: embedding,
//! blocks of (RMS norm → grouped-query attention with RoPE → RMS norm → SwiGLU MLP), final
//! norm, output head. The forward runs a batch of sequences at once.

use perch_mlx::fast::{self, RopeOffset};
use perch_mlx::{Array, Dtype};

use crate::batch::BatchLayout;
use crate::config::{Architecture, ModelConfig};
use crate::kv_cache::LayerCache;
use crate::nn::{Embedding, Linear, RmsNorm};
use crate::rope::{Rope, RopeAngles};
use crate::weights::Weights;
use crate::Result;

struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    q_norm: Option<RmsNorm>,
    k_norm: Option<RmsNorm>,
}

struct Mlp {
    gate_proj: Linear,
    up_proj: Linear,
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
                    q_proj: weights.linear(&format!("{p}.self_attn.q_proj"))?,
                    k_proj: weights.linear(&format!("{p}.self_attn.k_proj"))?,
                    v_proj: weights.linear(&format!("{p}.self_attn.v_proj"))?,
                    o_proj: weights.linear(&format!("{p}.self_attn.o_proj"))?,
                    q_norm: norm(weights, "q_norm")?,
                    k_norm: norm(weights, "k_norm")?,
                },
                post_attention_layernorm: weights
                    .rms_norm(&format!("{p}.post_attention_layernorm"), eps)?,
                mlp: Mlp {
                    gate_proj: weights.linear(&format!("{p}.mlp.gate_proj"))?,
                    up_proj: weights.linear(&format!("{p}.mlp.up_proj"))?,
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
                    + a.q_proj.nbytes()
                    + a.k_proj.nbytes()
                    + a.v_proj.nbytes()
                    + a.o_proj.nbytes()
                    + a.q_norm.as_ref().map_or(0, norm)
                    + a.k_norm.as_ref().map_or(0, norm)
                    + b.mlp.gate_proj.nbytes()
                    + b.mlp.up_proj.nbytes()
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
            let gated = mlp
                .gate_proj
                .forward(&normed)?
                .silu()?
                .multiply(&mlp.up_proj.forward(&normed)?)?;
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
        let heads = |proj: &Linear, n: i32| -> Result<Array> {
            Ok(proj
                .forward(x)?
                .reshape(&[batch, len, n, c.head_dim])?
                .transpose(&[0, 2, 1, 3])?)
        };
        let mut q = heads(&attn.q_proj, c.num_attention_heads)?;
        let mut k = heads(&attn.k_proj, c.num_key_value_heads)?;
        let v = heads(&attn.v_proj, c.num_key_value_heads)?;
        if let (Some(qn), Some(kn)) = (&attn.q_norm, &attn.k_norm) {
            q = qn.forward(&q)?;
            k = kn.forward(&k)?;
        }
        let q = self.rope.apply(&q, angles)?;
        let k = self.rope.apply(&k, angles)?;
        let (keys, values) = cache.append(&k, &v)?;
        let scale = (c.head_dim as f32).powf(-0.5);
        let out = fast::scaled_dot_product_attention(&q, &keys, &values, scale, mask)?;
        let out = out.transpose(&[0, 2, 1, 3])?.reshape(&[
            batch,
            len,
            c.num_attention_heads * c.head_dim,
        ])?;
        attn.o_proj.forward(&out)
    }
}
