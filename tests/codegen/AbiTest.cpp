// The descriptor ABI between generated code and the runtime (issue 11): runtime/CnncModel.h
// declares the structs once; codegen/Lower.cpp emits them as LLVM struct types. Their layout
// under the target's DataLayout must be the C compiler's, field by field, or the C API reads
// garbage from every library.
#include "codegen/Codegen.h"

extern "C" {
#include "runtime/CnncModel.h"
}

#include <catch2/catch.hpp>

#include <cstddef>
#include <vector>

using namespace cnnc::codegen;

namespace {

void checkLayout(const std::vector<uint64_t> &generated, uint64_t generatedSize,
                 const std::vector<size_t> &offsets, size_t size) {
  REQUIRE(generated.size() == offsets.size());
  for (size_t i = 0; i < offsets.size(); ++i) {
    INFO("field " << i);
    CHECK(generated[i] == offsets[i]);
  }
  CHECK(generatedSize == size);
}

} // namespace

TEST_CASE("the descriptor codegen emits has runtime/CnncModel.h's layout", "[codegen][abi]") {
  for (const char *cpu : {"", "x86-64-v3"}) {
    INFO("target cpu '" << cpu << "'");
    TargetOptions o;
    o.cpu = cpu;
    const DescriptorLayout d = descriptorLayout(o);
    checkLayout(d.buffer, d.bufferSize,
                {offsetof(cnnc_buffer_desc, name), offsetof(cnnc_buffer_desc, kind),
                 offsetof(cnnc_buffer_desc, dtype), offsetof(cnnc_buffer_desc, rank),
                 offsetof(cnnc_buffer_desc, batched), offsetof(cnnc_buffer_desc, shape),
                 offsetof(cnnc_buffer_desc, numel), offsetof(cnnc_buffer_desc, weights_offset)},
                sizeof(cnnc_buffer_desc));
    checkLayout(d.model, d.modelSize,
                {offsetof(cnnc_model_desc, abi_version), offsetof(cnnc_model_desc, num_buffers),
                 offsetof(cnnc_model_desc, min_batch), offsetof(cnnc_model_desc, max_batch),
                 offsetof(cnnc_model_desc, workspace_bytes), offsetof(cnnc_model_desc, name),
                 offsetof(cnnc_model_desc, buffers), offsetof(cnnc_model_desc, weights),
                 offsetof(cnnc_model_desc, run), offsetof(cnnc_model_desc, prepare)},
                sizeof(cnnc_model_desc));
  }
}
