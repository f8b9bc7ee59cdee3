// Implementations of the wrappers declared in shim.h. Each one converts cxx's slices and
// codes into MLX's types, calls MLX, and boxes the result; nothing here catches exceptions
// (cxx does, at the boundary).
#include "shim.h"

#include <cstring>
#include <sstream>
#include <stdexcept>

#include "perch-mlx/src/ffi.rs.h"

namespace perch {

namespace {

const mx::Dtype kDtypes[] = {
    mx::bool_,   mx::uint8,   mx::uint16,  mx::uint32, mx::uint64,
    mx::int8,    mx::int16,   mx::int32,   mx::int64,  mx::float16,
    mx::float32, mx::float64, mx::bfloat16, mx::complex64,
};
constexpr size_t kDtypeCount = sizeof(kDtypes) / sizeof(kDtypes[0]);

mx::Dtype to_dtype(uint8_t code) {
  if (code >= kDtypeCount) {
    throw std::invalid_argument("unknown dtype code " + std::to_string(code));
  }
  return kDtypes[code];
}

uint8_t to_code(mx::Dtype dtype) {
  for (size_t i = 0; i < kDtypeCount; ++i) {
    if (kDtypes[i] == dtype) return static_cast<uint8_t>(i);
  }
  throw std::invalid_argument("dtype has no code in perch-mlx");
}

mx::Shape to_shape(rust::Slice<const int32_t> s) { return mx::Shape(s.begin(), s.end()); }
std::vector<int> to_ints(rust::Slice<const int32_t> s) { return std::vector<int>(s.begin(), s.end()); }
ArrayPtr box(mx::array a) { return std::make_unique<Array>(std::move(a)); }
std::optional<mx::array> optional(const Array* a) {
  return a ? std::optional<mx::array>(a->inner) : std::nullopt;
}
std::string str(rust::Str s) { return std::string(s.data(), s.size()); }
std::unique_ptr<ArrayVec> box_vec(std::vector<mx::array> items) {
  auto v = std::make_unique<ArrayVec>();
  v->items = std::move(items);
  return v;
}

template <typename T>
mx::array from_typed(rust::Slice<const uint8_t> data, mx::Shape shape, mx::Dtype dtype) {
  return mx::array(reinterpret_cast<const T*>(data.data()), std::move(shape), dtype);
}

}  // namespace

ArrayPtr array_from_bytes(rust::Slice<const uint8_t> data, rust::Slice<const int32_t> shape, uint8_t code) {
  auto dtype = to_dtype(code);
  size_t count = 1;
  for (auto d : shape) {
    if (d < 0) throw std::invalid_argument("negative dimension in shape");
    count *= static_cast<size_t>(d);
  }
  if (count * mx::size_of(dtype) != data.size()) {
    throw std::invalid_argument("data holds " + std::to_string(data.size()) + " bytes but the shape needs " +
                                std::to_string(count * mx::size_of(dtype)));
  }
  auto s = to_shape(shape);
  switch (dtype) {
    case mx::bool_: return box(from_typed<bool>(data, s, dtype));
    case mx::uint8: return box(from_typed<uint8_t>(data, s, dtype));
    case mx::uint16: return box(from_typed<uint16_t>(data, s, dtype));
    case mx::uint32: return box(from_typed<uint32_t>(data, s, dtype));
    case mx::uint64: return box(from_typed<uint64_t>(data, s, dtype));
    case mx::int8: return box(from_typed<int8_t>(data, s, dtype));
    case mx::int16: return box(from_typed<int16_t>(data, s, dtype));
    case mx::int32: return box(from_typed<int32_t>(data, s, dtype));
    case mx::int64: return box(from_typed<int64_t>(data, s, dtype));
    case mx::float16: return box(from_typed<mx::float16_t>(data, s, dtype));
    case mx::bfloat16: return box(from_typed<mx::bfloat16_t>(data, s, dtype));
    case mx::float32: return box(from_typed<float>(data, s, dtype));
    case mx::float64: return box(from_typed<double>(data, s, dtype));
    default: throw std::invalid_argument("arrays of this dtype cannot be built from Rust data");
  }
}

ArrayPtr array_clone(const Array& a) { return box(a.inner); }
ArrayPtr zeros(rust::Slice<const int32_t> shape, uint8_t dtype) { return box(mx::zeros(to_shape(shape), to_dtype(dtype))); }
ArrayPtr ones(rust::Slice<const int32_t> shape, uint8_t dtype) { return box(mx::ones(to_shape(shape), to_dtype(dtype))); }
ArrayPtr full(rust::Slice<const int32_t> shape, double value, uint8_t dtype) {
  auto d = to_dtype(dtype);
  // float64 is CPU-only in MLX, so the fill value travels as int64 or float32.
  auto fill = mx::issubdtype(d, mx::integer) ? mx::array(static_cast<int64_t>(value)) : mx::array(static_cast<float>(value));
  return box(mx::full(to_shape(shape), fill, d));
}
ArrayPtr arange(double start, double stop, double step, uint8_t dtype) {
  return box(mx::arange(start, stop, step, to_dtype(dtype)));
}
uint8_t array_dtype(const Array& a) { return to_code(a.inner.dtype()); }
rust::Vec<int32_t> array_shape(const Array& a) {
  rust::Vec<int32_t> out;
  for (auto d : a.inner.shape()) out.push_back(d);
  return out;
}
size_t array_size(const Array& a) { return a.inner.size(); }
size_t array_nbytes(const Array& a) { return a.inner.nbytes(); }

void array_copy_to(const Array& a, rust::Slice<uint8_t> out) {
  // Wait for this array alone: a new op (such as `contiguous`) would queue behind work
  // already handed to the stream (the next decode step), and reading would wait for it.
  auto c = a.inner;
  c.eval();
  if (!c.flags().row_contiguous || c.data_size() != c.size()) {
    c = mx::contiguous(c);
    c.eval();
  }
  if (out.size() != c.nbytes()) {
    throw std::invalid_argument("destination holds " + std::to_string(out.size()) + " bytes, array has " +
                                std::to_string(c.nbytes()));
  }
  if (c.nbytes() > 0) std::memcpy(out.data(), c.data<uint8_t>(), c.nbytes());
}

rust::String array_to_string(const Array& a) {
  std::ostringstream os;
  os << a.inner;
  return rust::String::lossy(os.str());
}

std::unique_ptr<ArrayVec> array_vec_new() { return std::make_unique<ArrayVec>(); }
void array_vec_push(ArrayVec& v, const Array& a) { v.items.push_back(a.inner); }
size_t array_vec_len(const ArrayVec& v) { return v.items.size(); }
ArrayPtr array_vec_get(const ArrayVec& v, size_t i) { return box(v.items.at(i)); }

void eval(const ArrayVec& v) { mx::eval(v.items); }
void async_eval(const ArrayVec& v) { mx::async_eval(v.items); }

#define PERCH_BINARY(name) \
  ArrayPtr name(const Array& a, const Array& b) { return box(mx::name(a.inner, b.inner)); }
#define PERCH_UNARY(name) \
  ArrayPtr name(const Array& a) { return box(mx::name(a.inner)); }

PERCH_BINARY(add)
PERCH_BINARY(subtract)
PERCH_BINARY(multiply)
PERCH_BINARY(divide)
PERCH_BINARY(power)
PERCH_BINARY(maximum)
PERCH_BINARY(minimum)
PERCH_BINARY(equal)
PERCH_BINARY(not_equal)
PERCH_BINARY(less)
PERCH_BINARY(less_equal)
PERCH_BINARY(greater)
PERCH_BINARY(greater_equal)
PERCH_BINARY(logical_and)
PERCH_BINARY(logical_or)
PERCH_BINARY(matmul)
PERCH_UNARY(negative)
PERCH_UNARY(exp)
PERCH_UNARY(log)
PERCH_UNARY(sqrt)
PERCH_UNARY(rsqrt)
PERCH_UNARY(sigmoid)
PERCH_UNARY(tanh)
PERCH_UNARY(erf)
PERCH_UNARY(abs)
PERCH_UNARY(square)
PERCH_UNARY(sin)
PERCH_UNARY(cos)
PERCH_UNARY(logical_not)

ArrayPtr where_(const Array& cond, const Array& x, const Array& y) { return box(mx::where(cond.inner, x.inner, y.inner)); }
ArrayPtr astype(const Array& a, uint8_t dtype) { return box(mx::astype(a.inner, to_dtype(dtype))); }

#define PERCH_REDUCE(name) \
  ArrayPtr name(const Array& a, rust::Slice<const int32_t> axes, bool keepdims) { \
    return box(mx::name(a.inner, to_ints(axes), keepdims));                        \
  }
PERCH_REDUCE(sum)
PERCH_REDUCE(mean)
PERCH_REDUCE(max)
PERCH_REDUCE(min)
PERCH_REDUCE(logsumexp)

ArrayPtr softmax(const Array& a, rust::Slice<const int32_t> axes, bool precise) {
  return box(mx::softmax(a.inner, to_ints(axes), precise));
}
ArrayPtr argmax(const Array& a, int32_t axis, bool keepdims) { return box(mx::argmax(a.inner, axis, keepdims)); }
ArrayPtr argmin(const Array& a, int32_t axis, bool keepdims) { return box(mx::argmin(a.inner, axis, keepdims)); }
ArrayPtr argsort(const Array& a, int32_t axis) { return box(mx::argsort(a.inner, axis)); }
ArrayPtr argpartition(const Array& a, int32_t kth, int32_t axis) { return box(mx::argpartition(a.inner, kth, axis)); }
ArrayPtr topk(const Array& a, int32_t k, int32_t axis) { return box(mx::topk(a.inner, k, axis)); }
ArrayPtr cumsum(const Array& a, int32_t axis, bool reverse, bool inclusive) {
  return box(mx::cumsum(a.inner, axis, reverse, inclusive));
}

ArrayPtr reshape(const Array& a, rust::Slice<const int32_t> shape) { return box(mx::reshape(a.inner, to_shape(shape))); }
ArrayPtr transpose(const Array& a, rust::Slice<const int32_t> axes) { return box(mx::transpose(a.inner, to_ints(axes))); }
ArrayPtr squeeze(const Array& a, rust::Slice<const int32_t> axes) { return box(mx::squeeze(a.inner, to_ints(axes))); }
ArrayPtr expand_dims(const Array& a, rust::Slice<const int32_t> axes) { return box(mx::expand_dims(a.inner, to_ints(axes))); }
ArrayPtr broadcast_to(const Array& a, rust::Slice<const int32_t> shape) { return box(mx::broadcast_to(a.inner, to_shape(shape))); }
ArrayPtr tril(const Array& a, int32_t k) { return box(mx::tril(a.inner, k)); }
ArrayPtr triu(const Array& a, int32_t k) { return box(mx::triu(a.inner, k)); }
ArrayPtr take(const Array& a, const Array& indices, int32_t axis) { return box(mx::take(a.inner, indices.inner, axis)); }
ArrayPtr take_along_axis(const Array& a, const Array& indices, int32_t axis) {
  return box(mx::take_along_axis(a.inner, indices.inner, axis));
}
ArrayPtr slice(const Array& a, rust::Slice<const int32_t> start, rust::Slice<const int32_t> stop, rust::Slice<const int32_t> strides) {
  return box(mx::slice(a.inner, to_shape(start), to_shape(stop), to_shape(strides)));
}
ArrayPtr slice_update(const Array& src, const Array& update, rust::Slice<const int32_t> start, rust::Slice<const int32_t> stop,
                      rust::Slice<const int32_t> strides) {
  return box(mx::slice_update(src.inner, update.inner, to_shape(start), to_shape(stop), to_shape(strides)));
}
ArrayPtr concatenate(const ArrayVec& arrays, int32_t axis) { return box(mx::concatenate(arrays.items, axis)); }
ArrayPtr contiguous(const Array& a) { return box(mx::contiguous(a.inner)); }
ArrayPtr stack(const ArrayVec& arrays, int32_t axis) { return box(mx::stack(arrays.items, axis)); }
std::unique_ptr<ArrayVec> split_equal(const Array& a, int32_t parts, int32_t axis) {
  return box_vec(mx::split(a.inner, parts, axis));
}
std::unique_ptr<ArrayVec> split_at(const Array& a, rust::Slice<const int32_t> indices, int32_t axis) {
  return box_vec(mx::split(a.inner, to_shape(indices), axis));
}

std::unique_ptr<ArrayVec> quantize(const Array& w, int32_t group_size, int32_t bits) {
  return box_vec(mx::quantize(w.inner, group_size, bits, "affine"));
}
ArrayPtr dequantize(const Array& w, const Array& scales, const Array& biases, int32_t group_size, int32_t bits) {
  return box(mx::dequantize(w.inner, scales.inner, biases.inner, group_size, bits, "affine"));
}
ArrayPtr quantized_matmul(const Array& x, const Array& w, const Array& scales, const Array& biases, bool transpose,
                          int32_t group_size, int32_t bits) {
  return box(mx::quantized_matmul(x.inner, w.inner, scales.inner, biases.inner, transpose, group_size, bits, "affine"));
}

ArrayPtr rms_norm(const Array& x, const Array* weight, float eps) {
  return box(mx::fast::rms_norm(x.inner, optional(weight), eps));
}
ArrayPtr layer_norm(const Array& x, const Array* weight, const Array* bias, float eps) {
  return box(mx::fast::layer_norm(x.inner, optional(weight), optional(bias), eps));
}
ArrayPtr rope(const Array& x, int32_t dims, bool traditional, bool has_base, float base, float scale, int32_t offset,
              const Array* freqs) {
  auto b = has_base ? std::optional<float>(base) : std::nullopt;
  return box(mx::fast::rope(x.inner, dims, traditional, b, scale, offset, optional(freqs)));
}
ArrayPtr rope_offsets(const Array& x, int32_t dims, bool traditional, bool has_base, float base, float scale,
                      const Array& offset, const Array* freqs) {
  auto b = has_base ? std::optional<float>(base) : std::nullopt;
  return box(mx::fast::rope(x.inner, dims, traditional, b, scale, offset.inner, optional(freqs)));
}
ArrayPtr scaled_dot_product_attention(const Array& q, const Array& k, const Array& v, float scale, rust::Str mask_mode,
                                      const Array* mask) {
  return box(mx::fast::scaled_dot_product_attention(q.inner, k.inner, v.inner, scale, str(mask_mode), optional(mask)));
}

ArrayPtr random_key(uint64_t seed) { return box(mx::random::key(seed)); }
ArrayPtr random_split(const Array& key, int32_t parts) { return box(mx::random::split(key.inner, parts)); }
ArrayPtr random_uniform(const Array& low, const Array& high, rust::Slice<const int32_t> shape, uint8_t dtype,
                        const Array& key) {
  return box(mx::random::uniform(low.inner, high.inner, to_shape(shape), to_dtype(dtype), key.inner));
}
ArrayPtr random_normal(rust::Slice<const int32_t> shape, uint8_t dtype, const Array& key) {
  return box(mx::random::normal(to_shape(shape), to_dtype(dtype), key.inner));
}
ArrayPtr random_gumbel(rust::Slice<const int32_t> shape, uint8_t dtype, const Array& key) {
  return box(mx::random::gumbel(to_shape(shape), to_dtype(dtype), key.inner));
}
ArrayPtr random_categorical(const Array& logits, int32_t axis, const Array& key) {
  return box(mx::random::categorical(logits.inner, axis, key.inner));
}

std::unique_ptr<TensorMap> tensor_map_new() { return std::make_unique<TensorMap>(); }
void tensor_map_insert(TensorMap& m, rust::Str name, const Array& a) { m.arrays.insert_or_assign(str(name), a.inner); }
void tensor_map_set_metadata(TensorMap& m, rust::Str key, rust::Str value) { m.metadata[str(key)] = str(value); }
rust::Vec<rust::String> tensor_map_names(const TensorMap& m) {
  rust::Vec<rust::String> out;
  for (const auto& [name, _] : m.arrays) out.push_back(rust::String::lossy(name));
  return out;
}
ArrayPtr tensor_map_get(const TensorMap& m, rust::Str name) {
  auto it = m.arrays.find(str(name));
  if (it == m.arrays.end()) throw std::out_of_range("no tensor named " + str(name));
  return box(it->second);
}
rust::Vec<rust::String> tensor_map_metadata(const TensorMap& m) {
  rust::Vec<rust::String> out;
  for (const auto& [key, value] : m.metadata) {
    out.push_back(rust::String::lossy(key));
    out.push_back(rust::String::lossy(value));
  }
  return out;
}
std::unique_ptr<TensorMap> load_safetensors(rust::Str path) {
  auto [arrays, metadata] = mx::load_safetensors(str(path));
  auto m = std::make_unique<TensorMap>();
  m->arrays = std::move(arrays);
  m->metadata = std::move(metadata);
  return m;
}
void save_safetensors(rust::Str path, const TensorMap& m) { mx::save_safetensors(str(path), m.arrays, m.metadata); }

std::unique_ptr<GgufFile> load_gguf(rust::Str path) {
  auto [arrays, metadata] = mx::load_gguf(str(path));
  auto f = std::make_unique<GgufFile>();
  f->arrays = std::move(arrays);
  f->metadata = std::move(metadata);
  return f;
}
rust::Vec<rust::String> gguf_tensor_names(const GgufFile& f) {
  rust::Vec<rust::String> out;
  for (const auto& [name, _] : f.arrays) out.push_back(rust::String::lossy(name));
  return out;
}
ArrayPtr gguf_tensor(const GgufFile& f, rust::Str name) {
  auto it = f.arrays.find(str(name));
  if (it == f.arrays.end()) throw std::out_of_range("GGUF file has no tensor named " + str(name));
  return box(it->second);
}
rust::Vec<rust::String> gguf_metadata_keys(const GgufFile& f) {
  rust::Vec<rust::String> out;
  for (const auto& [key, _] : f.metadata) out.push_back(rust::String::lossy(key));
  return out;
}
namespace {
const mx::GGUFMetaData& gguf_value(const GgufFile& f, rust::Str key) {
  auto it = f.metadata.find(str(key));
  if (it == f.metadata.end()) throw std::out_of_range("GGUF file has no metadata key " + str(key));
  return it->second;
}
}  // namespace
// 0: empty, 1: array (numbers), 2: string, 3: list of strings.
uint8_t gguf_metadata_kind(const GgufFile& f, rust::Str key) { return static_cast<uint8_t>(gguf_value(f, key).index()); }
rust::String gguf_metadata_string(const GgufFile& f, rust::Str key) {
  return rust::String::lossy(std::get<std::string>(gguf_value(f, key)));
}
rust::Vec<rust::String> gguf_metadata_strings(const GgufFile& f, rust::Str key) {
  rust::Vec<rust::String> out;
  const auto& items = std::get<std::vector<std::string>>(gguf_value(f, key));
  out.reserve(items.size());
  for (const auto& s : items) out.push_back(rust::String::lossy(s));
  return out;
}
ArrayPtr gguf_metadata_array(const GgufFile& f, rust::Str key) { return box(std::get<mx::array>(gguf_value(f, key))); }

size_t active_memory() { return mx::get_active_memory(); }
size_t peak_memory() { return mx::get_peak_memory(); }
void reset_peak_memory() { mx::reset_peak_memory(); }
size_t cache_memory() { return mx::get_cache_memory(); }
size_t set_memory_limit(size_t limit) { return mx::set_memory_limit(limit); }
size_t memory_limit() { return mx::get_memory_limit(); }
size_t set_cache_limit(size_t limit) { return mx::set_cache_limit(limit); }
void clear_cache() { mx::clear_cache(); }

namespace {
mx::Device device(bool gpu) { return mx::Device(gpu ? mx::Device::gpu : mx::Device::cpu); }
}  // namespace
bool device_available(bool gpu) { return mx::is_available(device(gpu)); }
bool default_device_is_gpu() { return mx::default_device().type == mx::Device::gpu; }
void set_default_device(bool gpu) { mx::set_default_device(device(gpu)); }
rust::Vec<DeviceInfoEntry> device_info(bool gpu) {
  rust::Vec<DeviceInfoEntry> out;
  for (const auto& [key, value] : mx::device_info(device(gpu))) {
    DeviceInfoEntry e{rust::String::lossy(key), rust::String(), 0, false};
    if (const auto* n = std::get_if<size_t>(&value)) {
      e.number = *n;
      e.is_number = true;
    } else {
      e.text = rust::String::lossy(std::get<std::string>(value));
    }
    out.push_back(std::move(e));
  }
  return out;
}
rust::String version() { return rust::String(mx::version()); }

}  // namespace perch
