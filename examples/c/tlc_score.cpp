// tlc_score_cpp: the README's C++ snippet as a program, with onnxruntime's C++ API.
//
//   tlc_score_cpp MODEL.onnx EXTENSIONS_LIBRARY TEXT...
//
// Prints LABEL<TAB>P0<TAB>P1... for each TEXT (the format of tlc_score.c, which is the full
// example: standard input, batches, truncation, invalid UTF-8).
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "onnxruntime_cxx_api.h"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: tlc_score_cpp MODEL.onnx EXTENSIONS_LIBRARY TEXT...\n");
    return 2;
  }
  try {
    setenv("ORT_DISABLE_TELEMETRY", "1", 0);  // before the Env: no telemetry files
    Ort::Env env(ORT_LOGGING_LEVEL_ERROR, "tlc");
    Ort::SessionOptions options;
    options.SetIntraOpNumThreads(1);
    // A full path: a bare "libortextensions.so" is not looked up in the current folder.
    Ort::ThrowOnError(Ort::GetApi().RegisterCustomOpsLibrary_V2(options, argv[2]));
    Ort::Session session(env, argv[1], options);

    std::vector<const char*> texts(argv + 3, argv + argc);
    Ort::AllocatorWithDefaultOptions alloc;
    int64_t shape[] = {static_cast<int64_t>(texts.size())};
    Ort::Value text = Ort::Value::CreateTensor(alloc, shape, 1,
                                               ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING);
    text.FillStringTensor(texts.data(), texts.size());
    const char* in[] = {"text"};
    const char* out[] = {"probabilities", "label"};
    auto result = session.Run(Ort::RunOptions{nullptr}, in, &text, 1, out, 2);
    const float* p = result[0].GetTensorData<float>();  // p[i * classes + j]: labels[j]
    size_t classes = result[0].GetTensorTypeAndShapeInfo().GetShape()[1];

    for (size_t i = 0; i < texts.size(); i++) {
      std::string label = result[1].GetStringTensorElement(i);
      std::fputs(label.c_str(), stdout);
      for (size_t j = 0; j < classes; j++) std::printf("\t%.9g", p[i * classes + j]);
      std::putchar('\n');
    }
  } catch (const Ort::Exception& e) {
    std::fprintf(stderr, "tlc_score_cpp: %s\n", e.what());
    return 1;
  }
  return 0;
}
