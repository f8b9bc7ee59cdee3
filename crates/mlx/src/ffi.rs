//! The raw `cxx` bridge to the C++ shim in `src/shim/`. Private to the crate: every item
//! here is wrapped by a safe function or method elsewhere. Functions that can throw are
//! declared with `Result`, so an MLX exception becomes an `Err` with MLX's message.

#[cxx::bridge(namespace = "perch")]
pub(crate) mod bridge {
    /// One entry of MLX's `device_info`: a number or a text value under a key.
    pub(crate) struct DeviceInfoEntry {
        pub key: String,
        pub text: String,
        pub number: u64,
        pub is_number: bool,
    }

    unsafe extern "C++" {
        include!("shim.h");

        type Array;
        type ArrayVec;
        type TensorMap;
        type GgufFile;

        fn array_from_bytes(data: &[u8], shape: &[i32], dtype: u8) -> Result<UniquePtr<Array>>;
        fn array_clone(a: &Array) -> UniquePtr<Array>;
        fn zeros(shape: &[i32], dtype: u8) -> Result<UniquePtr<Array>>;
        fn ones(shape: &[i32], dtype: u8) -> Result<UniquePtr<Array>>;
        fn full(shape: &[i32], value: f64, dtype: u8) -> Result<UniquePtr<Array>>;
        fn arange(start: f64, stop: f64, step: f64, dtype: u8) -> Result<UniquePtr<Array>>;
        fn array_dtype(a: &Array) -> Result<u8>;
        fn array_shape(a: &Array) -> Vec<i32>;
        fn array_size(a: &Array) -> usize;
        fn array_nbytes(a: &Array) -> usize;
        fn array_copy_to(a: &Array, out: &mut [u8]) -> Result<()>;
        fn array_to_string(a: &Array) -> Result<String>;

        fn array_vec_new() -> UniquePtr<ArrayVec>;
        fn array_vec_push(v: Pin<&mut ArrayVec>, a: &Array);
        fn array_vec_len(v: &ArrayVec) -> usize;
        fn array_vec_get(v: &ArrayVec, i: usize) -> Result<UniquePtr<Array>>;

        fn eval(v: &ArrayVec) -> Result<()>;
        fn async_eval(v: &ArrayVec) -> Result<()>;

        fn add(a: &Array, b: &Array) -> Result<UniquePtr<Array>>;
        fn subtract(a: &Array, b: &Array) -> Result<UniquePtr<Array>>;
        fn multiply(a: &Array, b: &Array) -> Result<UniquePtr<Array>>;
        fn divide(a: &Array, b: &Array) -> Result<UniquePtr<Array>>;
        fn power(a: &Array, b: &Array) -> Result<UniquePtr<Array>>;
        fn maximum(a: &Array, b: &Array) -> Result<UniquePtr<Array>>;
        fn minimum(a: &Array, b: &Array) -> Result<UniquePtr<Array>>;
        fn equal(a: &Array, b: &Array) -> Result<UniquePtr<Array>>;
        fn not_equal(a: &Array, b: &Array) -> Result<UniquePtr<Array>>;
        fn less(a: &Array, b: &Array) -> Result<UniquePtr<Array>>;
        fn less_equal(a: &Array, b: &Array) -> Result<UniquePtr<Array>>;
        fn greater(a: &Array, b: &Array) -> Result<UniquePtr<Array>>;
        fn greater_equal(a: &Array, b: &Array) -> Result<UniquePtr<Array>>;
        fn logical_and(a: &Array, b: &Array) -> Result<UniquePtr<Array>>;
        fn logical_or(a: &Array, b: &Array) -> Result<UniquePtr<Array>>;
        fn matmul(a: &Array, b: &Array) -> Result<UniquePtr<Array>>;
        fn negative(a: &Array) -> Result<UniquePtr<Array>>;
        fn exp(a: &Array) -> Result<UniquePtr<Array>>;
        fn log(a: &Array) -> Result<UniquePtr<Array>>;
        fn sqrt(a: &Array) -> Result<UniquePtr<Array>>;
        fn rsqrt(a: &Array) -> Result<UniquePtr<Array>>;
        fn sigmoid(a: &Array) -> Result<UniquePtr<Array>>;
        fn tanh(a: &Array) -> Result<UniquePtr<Array>>;
        fn erf(a: &Array) -> Result<UniquePtr<Array>>;
        fn abs(a: &Array) -> Result<UniquePtr<Array>>;
        fn square(a: &Array) -> Result<UniquePtr<Array>>;
        fn sin(a: &Array) -> Result<UniquePtr<Array>>;
        fn cos(a: &Array) -> Result<UniquePtr<Array>>;
        fn logical_not(a: &Array) -> Result<UniquePtr<Array>>;
        fn where_(cond: &Array, x: &Array, y: &Array) -> Result<UniquePtr<Array>>;
        fn astype(a: &Array, dtype: u8) -> Result<UniquePtr<Array>>;

        fn sum(a: &Array, axes: &[i32], keepdims: bool) -> Result<UniquePtr<Array>>;
        fn mean(a: &Array, axes: &[i32], keepdims: bool) -> Result<UniquePtr<Array>>;
        fn max(a: &Array, axes: &[i32], keepdims: bool) -> Result<UniquePtr<Array>>;
        fn min(a: &Array, axes: &[i32], keepdims: bool) -> Result<UniquePtr<Array>>;
        fn logsumexp(a: &Array, axes: &[i32], keepdims: bool) -> Result<UniquePtr<Array>>;
        fn softmax(a: &Array, axes: &[i32], precise: bool) -> Result<UniquePtr<Array>>;
        fn argmax(a: &Array, axis: i32, keepdims: bool) -> Result<UniquePtr<Array>>;
        fn argmin(a: &Array, axis: i32, keepdims: bool) -> Result<UniquePtr<Array>>;
        fn argsort(a: &Array, axis: i32) -> Result<UniquePtr<Array>>;
        fn argpartition(a: &Array, kth: i32, axis: i32) -> Result<UniquePtr<Array>>;
        fn topk(a: &Array, k: i32, axis: i32) -> Result<UniquePtr<Array>>;
        fn cumsum(a: &Array, axis: i32, reverse: bool, inclusive: bool)
            -> Result<UniquePtr<Array>>;

        fn reshape(a: &Array, shape: &[i32]) -> Result<UniquePtr<Array>>;
        fn transpose(a: &Array, axes: &[i32]) -> Result<UniquePtr<Array>>;
        fn squeeze(a: &Array, axes: &[i32]) -> Result<UniquePtr<Array>>;
        fn expand_dims(a: &Array, axes: &[i32]) -> Result<UniquePtr<Array>>;
        fn broadcast_to(a: &Array, shape: &[i32]) -> Result<UniquePtr<Array>>;
        fn tril(a: &Array, k: i32) -> Result<UniquePtr<Array>>;
        fn triu(a: &Array, k: i32) -> Result<UniquePtr<Array>>;
        fn take(a: &Array, indices: &Array, axis: i32) -> Result<UniquePtr<Array>>;
        fn take_along_axis(a: &Array, indices: &Array, axis: i32) -> Result<UniquePtr<Array>>;
        fn slice(
            a: &Array,
            start: &[i32],
            stop: &[i32],
            strides: &[i32],
        ) -> Result<UniquePtr<Array>>;
        fn slice_update(
            src: &Array,
            update: &Array,
            start: &[i32],
            stop: &[i32],
            strides: &[i32],
        ) -> Result<UniquePtr<Array>>;
        fn concatenate(arrays: &ArrayVec, axis: i32) -> Result<UniquePtr<Array>>;
        fn contiguous(a: &Array) -> Result<UniquePtr<Array>>;
        fn stack(arrays: &ArrayVec, axis: i32) -> Result<UniquePtr<Array>>;
        fn split_equal(a: &Array, parts: i32, axis: i32) -> Result<UniquePtr<ArrayVec>>;
        fn split_at(a: &Array, indices: &[i32], axis: i32) -> Result<UniquePtr<ArrayVec>>;

        fn quantize(w: &Array, group_size: i32, bits: i32) -> Result<UniquePtr<ArrayVec>>;
        fn dequantize(
            w: &Array,
            scales: &Array,
            biases: &Array,
            group_size: i32,
            bits: i32,
        ) -> Result<UniquePtr<Array>>;
        #[allow(clippy::too_many_arguments)]
        fn quantized_matmul(
            x: &Array,
            w: &Array,
            scales: &Array,
            biases: &Array,
            transpose: bool,
            group_size: i32,
            bits: i32,
        ) -> Result<UniquePtr<Array>>;

        unsafe fn rms_norm(x: &Array, weight: *const Array, eps: f32) -> Result<UniquePtr<Array>>;
        unsafe fn layer_norm(
            x: &Array,
            weight: *const Array,
            bias: *const Array,
            eps: f32,
        ) -> Result<UniquePtr<Array>>;
        #[allow(clippy::too_many_arguments)]
        unsafe fn rope(
            x: &Array,
            dims: i32,
            traditional: bool,
            has_base: bool,
            base: f32,
            scale: f32,
            offset: i32,
            freqs: *const Array,
        ) -> Result<UniquePtr<Array>>;
        #[allow(clippy::too_many_arguments)]
        unsafe fn rope_offsets(
            x: &Array,
            dims: i32,
            traditional: bool,
            has_base: bool,
            base: f32,
            scale: f32,
            offset: &Array,
            freqs: *const Array,
        ) -> Result<UniquePtr<Array>>;
        unsafe fn scaled_dot_product_attention(
            q: &Array,
            k: &Array,
            v: &Array,
            scale: f32,
            mask_mode: &str,
            mask: *const Array,
        ) -> Result<UniquePtr<Array>>;

        fn random_key(seed: u64) -> Result<UniquePtr<Array>>;
        fn random_split(key: &Array, parts: i32) -> Result<UniquePtr<Array>>;
        fn random_uniform(
            low: &Array,
            high: &Array,
            shape: &[i32],
            dtype: u8,
            key: &Array,
        ) -> Result<UniquePtr<Array>>;
        fn random_normal(shape: &[i32], dtype: u8, key: &Array) -> Result<UniquePtr<Array>>;
        fn random_gumbel(shape: &[i32], dtype: u8, key: &Array) -> Result<UniquePtr<Array>>;
        fn random_categorical(logits: &Array, axis: i32, key: &Array) -> Result<UniquePtr<Array>>;

        fn tensor_map_new() -> UniquePtr<TensorMap>;
        fn tensor_map_insert(m: Pin<&mut TensorMap>, name: &str, a: &Array);
        fn tensor_map_set_metadata(m: Pin<&mut TensorMap>, key: &str, value: &str);
        fn tensor_map_names(m: &TensorMap) -> Vec<String>;
        fn tensor_map_get(m: &TensorMap, name: &str) -> Result<UniquePtr<Array>>;
        fn tensor_map_metadata(m: &TensorMap) -> Vec<String>;
        fn load_safetensors(path: &str) -> Result<UniquePtr<TensorMap>>;
        fn save_safetensors(path: &str, m: &TensorMap) -> Result<()>;
        fn load_gguf(path: &str) -> Result<UniquePtr<GgufFile>>;
        fn gguf_tensor_names(f: &GgufFile) -> Vec<String>;
        fn gguf_tensor(f: &GgufFile, name: &str) -> Result<UniquePtr<Array>>;
        fn gguf_metadata_keys(f: &GgufFile) -> Vec<String>;
        fn gguf_metadata_kind(f: &GgufFile, key: &str) -> Result<u8>;
        fn gguf_metadata_string(f: &GgufFile, key: &str) -> Result<String>;
        fn gguf_metadata_strings(f: &GgufFile, key: &str) -> Result<Vec<String>>;
        fn gguf_metadata_array(f: &GgufFile, key: &str) -> Result<UniquePtr<Array>>;

        fn active_memory() -> usize;
        fn peak_memory() -> usize;
        fn reset_peak_memory();
        fn cache_memory() -> usize;
        fn set_memory_limit(limit: usize) -> usize;
        fn memory_limit() -> usize;
        fn set_cache_limit(limit: usize) -> usize;
        fn clear_cache();

        fn device_available(gpu: bool) -> Result<bool>;
        fn default_device_is_gpu() -> bool;
        fn set_default_device(gpu: bool) -> Result<()>;
        fn device_info(gpu: bool) -> Result<Vec<DeviceInfoEntry>>;
        fn version() -> String;
    }
}

// SAFETY: an MLX array is an immutable handle to a reference-counted node (the count is
// atomic); moving it to another thread is sound. Graph building on one array from two
// threads at once is not, which is why `Array` is `Send` but not `Sync`.
unsafe impl Send for bridge::Array {}
unsafe impl Send for bridge::ArrayVec {}
unsafe impl Send for bridge::TensorMap {}
unsafe impl Send for bridge::GgufFile {}
