
/*
 * Copyright (C) ngx_mdm contributors
 *
 * Target "p7m": a DEP server token file as an admin uploads it (PUT
 * /v1/dep/tokenpki/NAME), through ngx_http_mdm_dep_decrypt(), the
 * thread-pool task: S/MIME with MIME headers, DER/BER, PEM or bare base64
 * CMS, an EnvelopedData, decrypted with the DEP name's key (fuzz/pki's RSA
 * device key stands in for it; the seeds are encrypted to it).  Whatever
 * the input, the task ends with an error meant for the admin (client set)
 * or with content no longer than the file, in the buffer it was given.
 */


#include "fuzz_request.h"
#include "ngx_http_mdm_api_dep.h"


static ngx_str_t  cert, key;
static uint64_t   runs, decrypted;


static void
fuzz_report(void)
{
    fprintf(stderr, "p7m: %llu inputs, decrypted %llu\n",
            (unsigned long long) runs, (unsigned long long) decrypted);
}


static void
fuzz_read(const char *name, ngx_str_t *to)
{
    char   path[512];
    FILE  *f;

    snprintf(path, sizeof(path), "%s/%s", FUZZ_PKI, name);
    f = fopen(path, "r");
    fuzz_check(f != NULL);

    to->data = malloc(16384);
    fuzz_check(to->data != NULL);
    to->len = fread(to->data, 1, 16384, f);
    fuzz_check(to->len > 0 && to->len < 16384);
    fclose(f);
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ngx_shim_init();

    fuzz_read("rsa.pem", &cert);
    fuzz_read("rsa.key", &key);

    atexit(fuzz_report);

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                      *out;
    ngx_http_mdm_dep_decrypt_t   job;

    runs++;

    ngx_memzero(&job, sizeof(job));

    /* exactly size bytes, and an output buffer of file.len as the API's */
    job.file.len = size;
    job.file.data = malloc(size ? size : 1);
    out = malloc(size ? size : 1);
    fuzz_check(job.file.data != NULL && out != NULL);
    if (size) {
        memcpy(job.file.data, data, size);
    }

    job.cert = cert;
    job.key = key;
    job.out.data = out;

    ngx_http_mdm_dep_decrypt(&job);

    if (job.err == NULL) {
        decrypted++;
        fuzz_check(job.out.data == out);
        fuzz_check(job.out.len > 0 && job.out.len <= size);

    } else {
        /* the key and certificate are good: any error is the file's */
        fuzz_check(job.client == 1);
    }

    free(job.file.data);
    free(out);

    return 0;
}
