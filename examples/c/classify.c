/* Classifies MNIST digits with a network compiled by cnnc into a shared library.
 *
 *   cnnc train examples/mnist_base.cnn --out run                  # trained weights + mean
 *   cnnc compile examples/mnist_base.cnn -o libmnist.so --header mnist.h --batch 100 \
 *        --prefix mnist --weights run/weights.npz                # embeds them
 *   cc -O2 classify.c -I. -L. -lmnist -Wl,-rpath,'$ORIGIN' -o classify
 *   ./classify data/mnist/t10k-images-idx3-ubyte data/mnist/t10k-labels-idx1-ubyte
 *
 * The images go in as raw 0-255 pixels: the library subtracts the training mean itself
 * (it is a parameter, %data.mean, saved by `cnnc train`). An optional third argument loads
 * weights from a .npz at run time instead of the embedded ones.
 * Only the C library and the generated header: no cnnc code. The library exports its API
 * under the prefix `mnist` (mnist_create, mnist_infer, ...), so that it can share a program
 * with other models' libraries; the header documents every function. */
#include "mnist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An IDX file of unsigned bytes (the MNIST format, uncompressed): magic 0 0 8 rank, then
 * rank big-endian u32 sizes, then the data. Returns the data and the first dimension. */
static unsigned char *read_idx(const char *path, long *count, long *per_item) {
  FILE *f = fopen(path, "rb");
  unsigned char h[4], d[4];
  if (!f || fread(h, 1, 4, f) != 4 || h[0] || h[1] || h[2] != 8 || h[3] < 1) {
    fprintf(stderr, "%s: not an uncompressed IDX file of bytes\n", path);
    exit(1);
  }
  long n = 1, first = 0;
  for (int i = 0; i < h[3]; ++i) {
    if (fread(d, 1, 4, f) != 4) {
      fprintf(stderr, "%s: truncated header\n", path);
      exit(1);
    }
    long v = (long)d[0] << 24 | d[1] << 16 | d[2] << 8 | d[3];
    if (i == 0)
      first = v;
    n *= v;
  }
  unsigned char *data = malloc((size_t)n);
  if (!data || fread(data, 1, (size_t)n, f) != (size_t)n) {
    fprintf(stderr, "%s: truncated data\n", path);
    exit(1);
  }
  fclose(f);
  *count = first;
  *per_item = first ? n / first : 0;
  return data;
}

static void check(int rc, mnist_instance *inst, const char *what) {
  if (rc != CNNC_OK) {
    fprintf(stderr, "%s failed: %s\n", what, mnist_last_error(inst));
    exit(1);
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s IMAGES.idx LABELS.idx [WEIGHTS.npz]\n", argv[0]);
    return 2;
  }
  enum {
    B = MNIST_MAX_BATCH,
    PIXELS = MNIST_INPUT_0_PER_EXAMPLE,
    CLASSES = MNIST_OUTPUT_0_PER_EXAMPLE
  };
  long n, pixels, nl, one;
  unsigned char *images = read_idx(argv[1], &n, &pixels);
  unsigned char *labels = read_idx(argv[2], &nl, &one);
  if (pixels != PIXELS || nl != n) {
    fprintf(stderr, "expected %d pixels per image and one label per image\n", PIXELS);
    return 1;
  }

  mnist_instance *inst = NULL;
  check(mnist_create(&inst), NULL, "mnist_create");
  if (argc > 3)
    check(mnist_load_weights(inst, argv[3]), inst, "mnist_load_weights");

  static float x[B * PIXELS], prob[B * CLASSES];
  long correct = 0, confusion[CLASSES][CLASSES];
  memset(confusion, 0, sizeof confusion);
  for (long b = 0; b < n; b += B) {
    long k = n - b < B ? n - b : B; /* the library runs any batch 1..B */
    for (long i = 0; i < k * PIXELS; ++i)
      x[i] = images[b * PIXELS + i]; /* raw 0-255 */
    const void *in[] = {x};
    float *out[] = {prob};
    check(mnist_infer(inst, k, in, out), inst, "mnist_infer");
    for (long i = 0; i < k; ++i) {
      int best = 0;
      for (int c = 1; c < CLASSES; ++c)
        if (prob[i * CLASSES + c] > prob[i * CLASSES + best])
          best = c;
      correct += best == labels[b + i];
      confusion[labels[b + i]][best]++;
      if (b + i < 10)
        printf("image %ld: label %d, predicted %d (p = %.3f)\n", b + i, labels[b + i], best,
               prob[i * CLASSES + best]);
    }
  }
  printf("accuracy: %ld / %ld = %.2f%% (test error %.2f%%)\n", correct, n, 100.0 * correct / n,
         100.0 - 100.0 * correct / n);
  printf("confusion (rows: label, columns: predicted):\n");
  for (int r = 0; r < CLASSES; ++r) {
    for (int c = 0; c < CLASSES; ++c)
      printf("%5ld", confusion[r][c]);
    printf("\n");
  }
  mnist_destroy(inst);
  free(images);
  free(labels);
  return 0;
}
