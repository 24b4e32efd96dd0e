/* The C API's .npz codec (CnncNpz.h): numpy.savez archives read in memory, stored members
 * written one by one. Plain C on libc only, like CnncApi.c. */
#include "runtime/CnncNpz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define fail cnnc_rt_fail /* as in CnncApi.c */

/* ---------------------------------------------------------------- .npz (stored zip) -- */
static uint32_t rd16(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}
static uint32_t rd32(const unsigned char *p) {
  return rd16(p) | rd16(p + 2) << 16;
}

/* Parses one .npy member (header and bounds; the data stays in place). Every length and size
 * read from the file is checked before use, with no arithmetic that can overflow. */
static int parseNpy(cnnc_instance *inst, const char *path, const char *name, const unsigned char *p,
                    size_t n, npyArray *a) {
  if (n < 10 || memcmp(p, "\x93NUMPY", 6) != 0)
    return fail(inst, CNNC_ERR_IO, "%s: member '%s' is not a .npy array", path, name);
  if (p[6] < 1 || p[6] > 3)
    return fail(inst, CNNC_ERR_IO, "%s: '%s': unsupported .npy version %d", path, name, p[6]);
  size_t hoff = p[6] == 1 ? 10 : 12;
  if (n < hoff)
    return fail(inst, CNNC_ERR_IO, "%s: '%s': truncated .npy header", path, name);
  size_t hlen = p[6] == 1 ? rd16(p + 8) : rd32(p + 8);
  if (hlen > n - hoff)
    return fail(inst, CNNC_ERR_IO, "%s: '%s': truncated .npy header", path, name);
  char hdr[1024];
  size_t hl = hlen < sizeof hdr - 1 ? hlen : sizeof hdr - 1;
  memcpy(hdr, p + hoff, hl);
  hdr[hl] = 0;
  const char *descr = strstr(hdr, "'descr':"), *fo = strstr(hdr, "'fortran_order':"),
             *sh = strstr(hdr, "'shape':");
  if (!descr || !fo || !sh)
    return fail(inst, CNNC_ERR_IO, "%s: '%s': malformed .npy header", path, name);
  const char *q = strchr(descr + 8, '\'');
  a->dtype = !q                            ? -1
             : strncmp(q, "'<f4'", 5) == 0 ? 0
             : strncmp(q, "'<f8'", 5) == 0 ? 1
             : strncmp(q, "'<i8'", 5) == 0 ? 2
                                           : -1;
  if (a->dtype < 0)
    return fail(inst, CNNC_ERR_IO,
                "%s: '%s': only little-endian f4/f8 (and i8 steps) are supported", path, name);
  if (strstr(fo, "True") && strstr(fo, "True") < sh)
    return fail(inst, CNNC_ERR_IO, "%s: '%s': Fortran-order arrays are not supported", path, name);
  a->rank = 0;
  const char *sp = strchr(sh, '(');
  if (!sp)
    return fail(inst, CNNC_ERR_IO, "%s: '%s': malformed shape", path, name);
  /* numel saturates at INT64_MAX (then no file is large enough); a zero dim makes it 0 */
  uint64_t numel = 1;
  for (++sp; *sp != ')'; ++sp) {
    if (*sp == ' ' || *sp == ',')
      continue;
    if (*sp < '0' || *sp > '9')
      return fail(inst, CNNC_ERR_IO, "%s: '%s': malformed shape", path, name);
    if (a->rank == 8)
      return fail(inst, CNNC_ERR_IO, "%s: '%s': rank > 8", path, name);
    int64_t d = 0;
    for (; *sp >= '0' && *sp <= '9'; ++sp) {
      if (d > (INT64_MAX - 9) / 10)
        return fail(inst, CNNC_ERR_IO, "%s: '%s': dimension too large", path, name);
      d = d * 10 + (*sp - '0');
    }
    --sp;
    a->dims[a->rank++] = d;
    numel = numel > (uint64_t)INT64_MAX / (d ? (uint64_t)d : 1) ? (uint64_t)INT64_MAX : numel * (uint64_t)d;
  }
  if (numel > (n - hoff - hlen) / (a->dtype == 0 ? 4 : 8))
    return fail(inst, CNNC_ERR_IO, "%s: '%s': truncated data", path, name);
  a->name = name;
  a->data = p + hoff + hlen;
  return CNNC_OK;
}

int cnnc_rt_read_npz(cnnc_instance *inst, const char *path, cnnc_rt_npz_member fn, void *ctx) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return fail(inst, CNNC_ERR_IO, "%s: cannot open", path);
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  if (size == 0) {
    fclose(f);
    return fail(inst, CNNC_ERR_IO, "%s: not a .npz archive (empty file)", path);
  }
  unsigned char *buf = size > 0 ? malloc((size_t)size) : NULL;
  if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size) {
    fclose(f);
    free(buf);
    return fail(inst, CNNC_ERR_IO, "%s: cannot read", path);
  }
  fclose(f);
  int rc = CNNC_OK;
  size_t pos = 0;
  if ((size_t)size < 4 || (rd32(buf) != 0x04034b50 && rd32(buf) != 0x06054b50)) {
    free(buf);
    return fail(inst, CNNC_ERR_IO, "%s: not a .npz archive (no zip header)", path);
  }
  while (rc == CNNC_OK && pos + 30 <= (size_t)size && rd32(buf + pos) == 0x04034b50) {
    const unsigned char *h = buf + pos;
    uint32_t method = rd16(h + 8), csize = rd32(h + 18), nlen = rd16(h + 26), xlen = rd16(h + 28);
    char name[256];
    size_t start = pos + 30 + nlen + xlen;
    if (nlen >= sizeof name || start > (size_t)size) {
      rc = fail(inst, CNNC_ERR_IO, "%s: truncated or corrupt archive (zip entry header)", path);
      break;
    }
    memcpy(name, h + 30, nlen);
    name[nlen] = 0;
    if (nlen > 4 && strcmp(name + nlen - 4, ".npy") == 0)
      name[nlen - 4] = 0;
    if (method != 0) {
      rc = fail(inst, CNNC_ERR_IO,
                "%s: '%s' is compressed; the runtime reads numpy.savez (stored) archives", path,
                name);
      break;
    }
    if ((rd16(h + 6) & 8) || csize == 0xffffffffu) {
      rc = fail(inst, CNNC_ERR_IO, "%s: '%s': unsupported zip entry (streamed or zip64)", path,
                name);
      break;
    }
    if (csize > (size_t)size - start) {
      rc = fail(inst, CNNC_ERR_IO, "%s: truncated archive ('%s' needs %lu bytes, %lu remain)",
                path, name, (unsigned long)csize, (unsigned long)((size_t)size - start));
      break;
    }
    npyArray a;
    rc = parseNpy(inst, path, name, buf + start, csize, &a);
    if (rc == CNNC_OK)
      rc = fn(inst, path, &a, ctx);
    pos = start + csize;
  }
  /* the members end where the central directory (or, with none, its end record) begins: a
     file cut between two members must not load as a smaller archive */
  if (rc == CNNC_OK && (pos + 4 > (size_t)size || (rd32(buf + pos) != 0x02014b50 &&
                                                    rd32(buf + pos) != 0x06054b50)))
    rc = fail(inst, CNNC_ERR_IO, "%s: truncated or corrupt archive (no central directory after "
                                 "the last member)", path);
  free(buf);
  return rc;
}

/* ---------------------------------------------------------------- .npz writing -- */
static uint32_t crc32(const unsigned char *p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k)
      c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return ~c;
}

static void wr16(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8);
}
static void wr32(unsigned char *p, uint32_t v) {
  wr16(p, v & 0xffff), wr16(p + 2, v >> 16);
}

void cnnc_rt_zip_add_npy(zipWriter *z, const char *name, const char *descr, int rank,
                         const int64_t *dims, const void *data, size_t bytes) {
  char dict[512], shape[256] = "(";
  for (int k = 0; k < rank; ++k)
    snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%lld%s", (long long)dims[k],
             rank == 1      ? ","
             : k + 1 < rank ? ", "
                            : "");
  strcat(shape, ")");
  int dl = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                    descr, shape);
  size_t hlen = ((size_t)10 + (size_t)dl + 1 + 63) / 64 * 64 - 10;
  size_t total = 10 + hlen + bytes;
  unsigned char *m = malloc(total);
  char fname[300];
  int nlen = snprintf(fname, sizeof fname, "%s.npy", name);
  unsigned char *grown = z->cdLen + 46 + (size_t)nlen > z->cdCap
                             ? realloc(z->cd, (z->cdCap = 2 * z->cdCap + 46 + (size_t)nlen))
                             : z->cd;
  if (!m || !grown) {
    free(m);
    z->ok = 0;
    return;
  }
  z->cd = grown;
  memcpy(m, "\x93NUMPY\x01\x00", 8);
  wr16(m + 8, (uint32_t)hlen);
  memset(m + 10, ' ', hlen);
  memcpy(m + 10, dict, (size_t)dl);
  m[10 + hlen - 1] = '\n';
  if (bytes)
    memcpy(m + 10 + hlen, data, bytes);
  const uint32_t crc = crc32(m, total);
  unsigned char lh[30] = {0};
  wr32(lh, 0x04034b50), wr16(lh + 4, 20), wr16(lh + 12, 0x21); /* 1980-01-01 */
  wr32(lh + 14, crc), wr32(lh + 18, (uint32_t)total), wr32(lh + 22, (uint32_t)total);
  wr16(lh + 26, (uint32_t)nlen);
  unsigned char *c = z->cd + z->cdLen;
  memset(c, 0, 46);
  wr32(c, 0x02014b50), wr16(c + 4, 20), wr16(c + 6, 20), wr16(c + 14, 0x21);
  wr32(c + 16, crc), wr32(c + 20, (uint32_t)total), wr32(c + 24, (uint32_t)total);
  wr16(c + 28, (uint32_t)nlen), wr32(c + 42, z->offset);
  memcpy(c + 46, fname, (size_t)nlen);
  z->cdLen += 46 + (size_t)nlen;
  z->ok &= fwrite(lh, 1, 30, z->f) == 30 && fwrite(fname, 1, (size_t)nlen, z->f) == (size_t)nlen &&
           fwrite(m, 1, total, z->f) == total;
  z->offset += 30 + (uint32_t)nlen + (uint32_t)total;
  ++z->count;
  free(m);
}

void cnnc_rt_zip_finish(zipWriter *z) {
  unsigned char end[22] = {0};
  wr32(end, 0x06054b50), wr16(end + 8, (uint32_t)z->count), wr16(end + 10, (uint32_t)z->count);
  wr32(end + 12, (uint32_t)z->cdLen), wr32(end + 16, z->offset);
  if (z->ok)
    z->ok = fwrite(z->cd, 1, z->cdLen, z->f) == z->cdLen && fwrite(end, 1, 22, z->f) == 22;
  free(z->cd);
  z->cd = NULL;
}
