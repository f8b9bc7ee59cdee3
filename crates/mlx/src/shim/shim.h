// C++ side of the perch-mlx bridge: thin wrappers over mlx::core that cxx can call.
//
// Every wrapper takes and returns `perch::Array` (a box around mlx::core::array) so
// cxx sees one opaque type; every fallible wrapper lets MLX's exceptions propagate, and
// cxx turns them into Rust `Err`s carrying MLX's message instead of aborting.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "mlx/mlx.h"
#include "rust/cxx.h"

namespace perch {

namespace mx = mlx::core;

struct Array {
  mx::array inner;
  explicit Array(mx::array a) : inner(std::move(a)) {}
};

struct ArrayVec {
  std::vector<mx::array> items;
};

struct TensorMap {
  std::unordered_map<std::string, mx::array> arrays;
  std::unordered_map<std::string, std::string> metadata;
};

struct GgufFile {
  std::unordered_map<std::string, mx::array> arrays;
  std::unordered_map<std::string, mx::GGUFMetaData> metadata;
};

struct DeviceInfoEntry;

using ArrayPtr = std::unique_ptr<Array>;

// Construction and inspection.
ArrayPtr array_from_bytes(rust::Slice<const uint8_t> data, rust::Slice<const int32_t> shape, uint8_t dtype);
ArrayPtr array_clone(const Array& a);
ArrayPtr zeros(rust::Slice<const int32_t> shape, uint8_t dtype);
ArrayPtr ones(rust::Slice<const int32_t> shape, uint8_t dtype);
ArrayPtr full(rust::Slice<const int32_t> shape, double value, uint8_t dtype);
ArrayPtr arange(double start, double stop, double step, uint8_t dtype);
uint8_t array_dtype(const Array& a);
rust::Vec<int32_t> array_shape(const Array& a);
size_t array_size(const Array& a);
size_t array_nbytes(const Array& a);
void array_copy_to(const Array& a, rust::Slice<uint8_t> out);
rust::String array_to_string(const Array& a);

// Lists of arrays (arguments and results of multi-array ops).
std::unique_ptr<ArrayVec> array_vec_new();
void array_vec_push(ArrayVec& v, const Array& a);
size_t array_vec_len(const ArrayVec& v);
ArrayPtr array_vec_get(const ArrayVec& v, size_t i);

// Evaluation.
void eval(const ArrayVec& v);
void async_eval(const ArrayVec& v);

// Element-wise.
ArrayPtr add(const Array& a, const Array& b);
ArrayPtr subtract(const Array& a, const Array& b);
ArrayPtr multiply(const Array& a, const Array& b);
ArrayPtr divide(const Array& a, const Array& b);
ArrayPtr power(const Array& a, const Array& b);
ArrayPtr maximum(const Array& a, const Array& b);
ArrayPtr minimum(const Array& a, const Array& b);
ArrayPtr equal(const Array& a, const Array& b);
ArrayPtr not_equal(const Array& a, const Array& b);
ArrayPtr less(const Array& a, const Array& b);
ArrayPtr less_equal(const Array& a, const Array& b);
ArrayPtr greater(const Array& a, const Array& b);
ArrayPtr greater_equal(const Array& a, const Array& b);
ArrayPtr logical_and(const Array& a, const Array& b);
ArrayPtr logical_or(const Array& a, const Array& b);
ArrayPtr matmul(const Array& a, const Array& b);
ArrayPtr negative(const Array& a);
ArrayPtr exp(const Array& a);
ArrayPtr log(const Array& a);
ArrayPtr sqrt(const Array& a);
ArrayPtr rsqrt(const Array& a);
ArrayPtr sigmoid(const Array& a);
ArrayPtr tanh(const Array& a);
ArrayPtr erf(const Array& a);
ArrayPtr abs(const Array& a);
ArrayPtr square(const Array& a);
ArrayPtr sin(const Array& a);
ArrayPtr cos(const Array& a);
ArrayPtr logical_not(const Array& a);
ArrayPtr where_(const Array& cond, const Array& x, const Array& y);
ArrayPtr astype(const Array& a, uint8_t dtype);

// Reductions and sorting.
ArrayPtr sum(const Array& a, rust::Slice<const int32_t> axes, bool keepdims);
ArrayPtr mean(const Array& a, rust::Slice<const int32_t> axes, bool keepdims);
ArrayPtr max(const Array& a, rust::Slice<const int32_t> axes, bool keepdims);
ArrayPtr min(const Array& a, rust::Slice<const int32_t> axes, bool keepdims);
ArrayPtr logsumexp(const Array& a, rust::Slice<const int32_t> axes, bool keepdims);
ArrayPtr softmax(const Array& a, rust::Slice<const int32_t> axes, bool precise);
ArrayPtr argmax(const Array& a, int32_t axis, bool keepdims);
ArrayPtr argmin(const Array& a, int32_t axis, bool keepdims);
ArrayPtr argsort(const Array& a, int32_t axis);
ArrayPtr argpartition(const Array& a, int32_t kth, int32_t axis);
ArrayPtr topk(const Array& a, int32_t k, int32_t axis);
ArrayPtr cumsum(const Array& a, int32_t axis, bool reverse, bool inclusive);

// Shape, indexing and joining.
ArrayPtr reshape(const Array& a, rust::Slice<const int32_t> shape);
ArrayPtr transpose(const Array& a, rust::Slice<const int32_t> axes);
ArrayPtr squeeze(const Array& a, rust::Slice<const int32_t> axes);
ArrayPtr expand_dims(const Array& a, rust::Slice<const int32_t> axes);
ArrayPtr broadcast_to(const Array& a, rust::Slice<const int32_t> shape);
ArrayPtr tril(const Array& a, int32_t k);
ArrayPtr triu(const Array& a, int32_t k);
ArrayPtr take(const Array& a, const Array& indices, int32_t axis);
ArrayPtr take_along_axis(const Array& a, const Array& indices, int32_t axis);
ArrayPtr slice(const Array& a, rust::Slice<const int32_t> start, rust::Slice<const int32_t> stop, rust::Slice<const int32_t> strides);
ArrayPtr slice_update(const Array& src, const Array& update, rust::Slice<const int32_t> start, rust::Slice<const int32_t> stop, rust::Slice<const int32_t> strides);
ArrayPtr concatenate(const ArrayVec& arrays, int32_t axis);
ArrayPtr contiguous(const Array& a);
ArrayPtr stack(const ArrayVec& arrays, int32_t axis);
std::unique_ptr<ArrayVec> split_equal(const Array& a, int32_t parts, int32_t axis);
std::unique_ptr<ArrayVec> split_at(const Array& a, rust::Slice<const int32_t> indices, int32_t axis);

// Quantization (affine mode).
std::unique_ptr<ArrayVec> quantize(const Array& w, int32_t group_size, int32_t bits);
ArrayPtr dequantize(const Array& w, const Array& scales, const Array& biases, int32_t group_size, int32_t bits);
ArrayPtr quantized_matmul(const Array& x, const Array& w, const Array& scales, const Array& biases, bool transpose, int32_t group_size, int32_t bits);

// mlx::core::fast. Optional arrays arrive as null pointers.
ArrayPtr rms_norm(const Array& x, const Array* weight, float eps);
ArrayPtr layer_norm(const Array& x, const Array* weight, const Array* bias, float eps);
ArrayPtr rope(const Array& x, int32_t dims, bool traditional, bool has_base, float base, float scale, int32_t offset, const Array* freqs);
ArrayPtr rope_offsets(const Array& x, int32_t dims, bool traditional, bool has_base, float base, float scale, const Array& offset, const Array* freqs);
ArrayPtr scaled_dot_product_attention(const Array& q, const Array& k, const Array& v, float scale, rust::Str mask_mode, const Array* mask);

// Random numbers with explicit keys.
ArrayPtr random_key(uint64_t seed);
ArrayPtr random_split(const Array& key, int32_t parts);
ArrayPtr random_uniform(const Array& low, const Array& high, rust::Slice<const int32_t> shape, uint8_t dtype, const Array& key);
ArrayPtr random_normal(rust::Slice<const int32_t> shape, uint8_t dtype, const Array& key);
ArrayPtr random_gumbel(rust::Slice<const int32_t> shape, uint8_t dtype, const Array& key);
ArrayPtr random_categorical(const Array& logits, int32_t axis, const Array& key);

// Files.
std::unique_ptr<TensorMap> tensor_map_new();
void tensor_map_insert(TensorMap& m, rust::Str name, const Array& a);
void tensor_map_set_metadata(TensorMap& m, rust::Str key, rust::Str value);
rust::Vec<rust::String> tensor_map_names(const TensorMap& m);
ArrayPtr tensor_map_get(const TensorMap& m, rust::Str name);
rust::Vec<rust::String> tensor_map_metadata(const TensorMap& m);
std::unique_ptr<TensorMap> load_safetensors(rust::Str path);
void save_safetensors(rust::Str path, const TensorMap& m);
std::unique_ptr<GgufFile> load_gguf(rust::Str path);
rust::Vec<rust::String> gguf_tensor_names(const GgufFile& f);
ArrayPtr gguf_tensor(const GgufFile& f, rust::Str name);
rust::Vec<rust::String> gguf_metadata_keys(const GgufFile& f);
uint8_t gguf_metadata_kind(const GgufFile& f, rust::Str key);
rust::String gguf_metadata_string(const GgufFile& f, rust::Str key);
rust::Vec<rust::String> gguf_metadata_strings(const GgufFile& f, rust::Str key);
ArrayPtr gguf_metadata_array(const GgufFile& f, rust::Str key);

// Memory.
size_t active_memory();
size_t peak_memory();
void reset_peak_memory();
size_t cache_memory();
size_t set_memory_limit(size_t limit);
size_t memory_limit();
size_t set_cache_limit(size_t limit);
void clear_cache();

// Devices.
bool device_available(bool gpu);
bool default_device_is_gpu();
void set_default_device(bool gpu);
rust::Vec<DeviceInfoEntry> device_info(bool gpu);
rust::String version();

}  // namespace perch
