/* tlc_score: score texts with a file written by `tlc export`, through onnxruntime's C API.
 *
 *   tlc_score [-b BATCH] [-t CHARS] [-e EXTENSIONS_LIBRARY] MODEL.onnx < texts.txt
 *   tlc_score --labels MODEL.onnx
 *   tlc_score [-t CHARS] --echo < texts.txt
 *
 * Input: one text a line (bytes up to '\n'; a '\r' before it is dropped; a last line without
 * '\n' counts). A text cannot hold a newline: replace newlines (e.g. by spaces) beforehand.
 * Bytes that are not valid UTF-8 become U+FFFD, one per maximal invalid subpart, exactly as
 * Python's bytes.decode("utf-8", "replace") does; a NUL byte becomes a space, as every tlc
 * graph input does (tlc/text.py: onnxruntime's Python binding would end the text there).
 *
 * Output: one line per input line, in input order:
 *   LABEL<TAB>P0<TAB>P1...
 * where Pj is the probability of the j-th label of the model's `tlc.labels` metadata entry
 * (`--labels` prints that JSON list and exits), written with "%.9g": nine significant digits,
 * which read back (strtof, numpy.float32) to the very float the model produced. Labels are
 * written as they are (a label holding a tab or newline would need quoting; tlc never makes
 * one).
 *
 * As tlc.runtime.Classifier does: texts are cut to their first CHARS code points (-t, default
 * 100000; 0: never cut), BATCH texts go to one onnxruntime run (-b, default 32, or 1 when
 * standard input is a terminal), each run on one thread. The extensions library defaults to
 * libortextensions.so beside this program (a bare name is not looked up in the current
 * folder: dlopen looks a name without '/' up only in LD_LIBRARY_PATH, the system's library
 * folders and the run path of libonnxruntime).
 *
 * `--echo` writes each text as it would go to the model (after the two steps above), one a
 * line, and loads no model.
 *
 * Exit status: 0; 1 with a message on standard error; 2 for a wrong command line.
 * Plain C11 + POSIX (getline, readlink, isatty).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "onnxruntime_c_api.h"

#if defined(__APPLE__)
#define EXTENSIONS_NAME "libortextensions.dylib"
#else
#define EXTENSIONS_NAME "libortextensions.so"
#endif

static const OrtApi *ort;

static void die(const char *what, const char *detail) {
  fprintf(stderr, "tlc_score: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  exit(1);
}

static void check(OrtStatus *status, const char *what) {
  if (status != NULL) {
    /* the message is printed before the status is released, then the process ends */
    fprintf(stderr, "tlc_score: %s: %s\n", what, ort->GetErrorMessage(status));
    ort->ReleaseStatus(status);
    exit(1);
  }
}

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (p == NULL) die("out of memory", NULL);
  return p;
}

/* Copies s[0..n) to out as valid UTF-8, each maximal invalid subpart replaced by U+FFFD
 * (Unicode's "maximal subpart" practice, which CPython follows), stopping after `limit` code
 * points (0: no limit). out must hold 3 * n bytes. Returns the bytes written. */
static size_t clean_utf8(const unsigned char *s, size_t n, size_t limit, unsigned char *out) {
  size_t i = 0, o = 0, chars = 0;
  while (i < n && (limit == 0 || chars < limit)) {
    unsigned char b = s[i];
    size_t need = 0;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (b < 0x80) {
      out[o++] = b == 0 ? ' ' : b; /* NUL reads as a space, as in tlc.text.model_text */
      i++;
      chars++;
      continue;
    } else if (b >= 0xC2 && b <= 0xDF) {
      need = 1;
    } else if (b == 0xE0) {
      need = 2, lo = 0xA0;
    } else if (b == 0xED) {
      need = 2, hi = 0x9F; /* no surrogates */
    } else if (b >= 0xE1 && b <= 0xEF) {
      need = 2;
    } else if (b == 0xF0) {
      need = 3, lo = 0x90;
    } else if (b >= 0xF1 && b <= 0xF3) {
      need = 3;
    } else if (b == 0xF4) {
      need = 3, hi = 0x8F; /* nothing above U+10FFFF */
    }
    size_t j = i + 1, got = 0;
    while (need > 0 && got < need && j < n) {
      unsigned char c = s[j];
      if (got == 0 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) break;
      j++, got++;
    }
    if (need > 0 && got == need) {
      memcpy(out + o, s + i, j - i);
      o += j - i;
    } else { /* the lead byte and the continuation bytes that fitted: one U+FFFD */
      out[o++] = 0xEF, out[o++] = 0xBF, out[o++] = 0xBD;
    }
    i = j;
    chars++;
  }
  return o;
}

typedef struct {
  char *data;
  size_t len;
} Text;

/* Reads the next line of standard input into *text as the model gets it (without its line
 * end, invalid UTF-8 replaced, cut to truncate_chars code points). 0 at the end of input. */
static int read_text(size_t truncate_chars, Text *text) {
  static char *line = NULL;
  static size_t room = 0;
  ssize_t got = getline(&line, &room, stdin);
  if (got < 0) {
    if (ferror(stdin)) die("cannot read standard input", NULL);
    free(line);
    line = NULL, room = 0;
    return 0;
  }
  size_t len = (size_t)got;
  if (len > 0 && line[len - 1] == '\n') len--;
  if (len > 0 && line[len - 1] == '\r') len--;
  text->data = xmalloc(3 * len);
  text->len = clean_utf8((unsigned char *)line, len, truncate_chars,
                         (unsigned char *)text->data);
  return 1;
}

/* --echo: the texts as the model would get them, one a line. */
static int echo_texts(size_t truncate_chars) {
  Text text;
  while (read_text(truncate_chars, &text)) {
    fwrite(text.data, 1, text.len, stdout);
    putchar('\n');
    free(text.data);
  }
  if (fflush(stdout) != 0) die("cannot write the output", NULL);
  return 0;
}

/* Scores texts[0..n) and prints one line for each. */
static void score(OrtSession *session, OrtAllocator *alloc, Text *texts, size_t n) {
  OrtValue *input = NULL;
  /* A text alone runs beside a copy of itself, as in tlc.runtime: onnxruntime's one-row
   * products round differently from its many-row ones, and a score must not depend on how
   * the input was cut into batches. */
  size_t rows = n == 1 ? 2 : n;
  int64_t shape[1] = {(int64_t)rows};
  check(ort->CreateTensorAsOrtValue(alloc, shape, 1, ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING,
                                    &input), "creating the input tensor");
  for (size_t i = 0; i < rows; i++) {
    const Text *t = &texts[i < n ? i : 0];
    char *buffer = NULL;
    check(ort->GetResizedStringTensorElementBuffer(input, i, t->len, &buffer),
          "filling the input tensor");
    if (t->len > 0) memcpy(buffer, t->data, t->len);
  }
  const char *input_names[] = {"text"};
  const char *output_names[] = {"probabilities", "label"};
  OrtValue *outputs[2] = {NULL, NULL};
  check(ort->Run(session, NULL, input_names, (const OrtValue *const *)&input, 1, output_names,
                 2, outputs), "scoring");

  OrtTensorTypeAndShapeInfo *info = NULL;
  size_t dims = 0;
  int64_t out_shape[2] = {0, 0};
  check(ort->GetTensorTypeAndShape(outputs[0], &info), "reading the probabilities");
  check(ort->GetDimensionsCount(info, &dims), "reading the probabilities");
  if (dims != 2) die("the model's `probabilities` output is not a matrix", NULL);
  check(ort->GetDimensions(info, out_shape, 2), "reading the probabilities");
  ort->ReleaseTensorTypeAndShapeInfo(info);
  if (out_shape[0] != (int64_t)rows) die("the model returned another number of rows", NULL);
  float *p = NULL;
  check(ort->GetTensorMutableData(outputs[0], (void **)&p), "reading the probabilities");

  size_t classes = (size_t)out_shape[1];
  char *label = NULL;
  size_t label_room = 0;
  for (size_t i = 0; i < n; i++) {
    size_t len = 0;
    check(ort->GetStringTensorElementLength(outputs[1], i, &len), "reading the labels");
    if (len + 1 > label_room) {
      free(label);
      label_room = 2 * (len + 1);
      label = xmalloc(label_room);
    }
    check(ort->GetStringTensorElement(outputs[1], len, i, label), "reading the labels");
    fwrite(label, 1, len, stdout);
    for (size_t j = 0; j < classes; j++) printf("\t%.9g", (double)p[i * classes + j]);
    putchar('\n');
  }
  free(label);
  ort->ReleaseValue(outputs[0]);
  ort->ReleaseValue(outputs[1]);
  ort->ReleaseValue(input);
  if (fflush(stdout) != 0) die("cannot write the output", NULL);
}

/* libortextensions beside this executable (Linux: /proc/self/exe; elsewhere argv[0]). */
static char *default_extensions(const char *argv0) {
  char self[4096];
  const char *exe = argv0;
  ssize_t got = readlink("/proc/self/exe", self, sizeof self - 1);
  if (got > 0) {
    self[got] = '\0';
    exe = self;
  }
  const char *slash = strrchr(exe, '/');
  size_t dir = slash ? (size_t)(slash - exe) : 1;
  char *path = xmalloc(dir + sizeof "/" EXTENSIONS_NAME);
  memcpy(path, slash ? exe : ".", dir);
  strcpy(path + dir, "/" EXTENSIONS_NAME);
  return path;
}

static void usage(void) {
  fputs("usage: tlc_score [-b BATCH] [-t CHARS] [-e EXTENSIONS_LIBRARY] MODEL.onnx < texts\n"
        "       tlc_score --labels MODEL.onnx\n"
        "       tlc_score [-t CHARS] --echo < texts\n"
        "Scores one text a line; prints LABEL<TAB>probabilities (in the order of --labels).\n",
        stderr);
  exit(2);
}

static size_t parse_count(const char *s, const char *what) {
  char *end = NULL;
  long long v = strtoll(s, &end, 10);
  if (end == s || *end != '\0' || v < 0) die("not a count", what);
  return (size_t)v;
}

int main(int argc, char **argv) {
  size_t batch = isatty(STDIN_FILENO) ? 1 : 32, truncate_chars = 100000;
  const char *model = NULL, *extensions = NULL;
  int labels_only = 0, echo = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--labels") == 0) {
      labels_only = 1;
    } else if (strcmp(argv[i], "--echo") == 0) {
      echo = 1;
    } else if (strcmp(argv[i], "-b") == 0 && i + 1 < argc) {
      batch = parse_count(argv[++i], "-b");
      if (batch == 0) die("-b must be at least 1", NULL);
    } else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) {
      truncate_chars = parse_count(argv[++i], "-t");
    } else if (strcmp(argv[i], "-e") == 0 && i + 1 < argc) {
      extensions = argv[++i];
    } else if (argv[i][0] == '-' || model != NULL) {
      usage();
    } else {
      model = argv[i];
    }
  }
  if (echo) return echo_texts(truncate_chars);
  if (model == NULL) usage();
  char *default_ext = extensions ? NULL : default_extensions(argv[0]);
  if (!extensions) extensions = default_ext;

  /* The API version of the headers compiled against; a library older than them says NULL. */
  ort = OrtGetApiBase()->GetApi(ORT_API_VERSION);
  if (ort == NULL) {
    fprintf(stderr, "tlc_score: the onnxruntime library (%s) is older than the headers "
            "(API version %d); build with older headers\n",
            OrtGetApiBase()->GetVersionString(), ORT_API_VERSION);
    return 1;
  }
  /* onnxruntime's Linux builds otherwise write telemetry files (/tmp, ~/.cache) when the
   * environment is created; the variable must be set before CreateEnv. A value the user
   * set is kept. */
  setenv("ORT_DISABLE_TELEMETRY", "1", 0);
  OrtEnv *env = NULL;
  check(ort->CreateEnv(ORT_LOGGING_LEVEL_ERROR, "tlc_score", &env), "creating the environment");

  OrtSessionOptions *options = NULL;
  check(ort->CreateSessionOptions(&options), "creating session options");
  check(ort->SetIntraOpNumThreads(options, 1), "setting threads");
  check(ort->SetInterOpNumThreads(options, 1), "setting threads");
  check(ort->AddSessionConfigEntry(options, "session.intra_op.allow_spinning", "0"),
        "setting threads");
  /* the tokenizer's ops (StringRegexReplace, SentencepieceTokenizer, ...) live here */
  check(ort->RegisterCustomOpsLibrary_V2(options, extensions),
        "registering the extensions library");
  OrtSession *session = NULL;
  check(ort->CreateSession(env, model, options, &session), "loading the model");

  OrtAllocator *alloc = NULL;
  check(ort->GetAllocatorWithDefaultOptions(&alloc), "getting the allocator");

  if (labels_only) {
    OrtModelMetadata *meta = NULL;
    char *value = NULL;
    check(ort->SessionGetModelMetadata(session, &meta), "reading the metadata");
    check(ort->ModelMetadataLookupCustomMetadataMap(meta, alloc, "tlc.labels", &value),
          "reading the metadata");
    if (value == NULL) die("no tlc.labels metadata: not a file written by `tlc export`", model);
    puts(value);
    check(ort->AllocatorFree(alloc, value), "freeing");
    ort->ReleaseModelMetadata(meta);
  } else {
    Text *texts = xmalloc(batch * sizeof *texts);
    size_t n = 0;
    while (read_text(truncate_chars, &texts[n])) {
      if (++n == batch) {
        score(session, alloc, texts, n);
        for (size_t i = 0; i < n; i++) free(texts[i].data);
        n = 0;
      }
    }
    if (n > 0) score(session, alloc, texts, n);
    for (size_t i = 0; i < n; i++) free(texts[i].data);
    free(texts);
  }

  ort->ReleaseSession(session);
  ort->ReleaseSessionOptions(options);
  ort->ReleaseEnv(env);
  free(default_ext);
  return 0;
}
