
/*
 * Copyright (C) ngx_mdm contributors
 *
 * Target "machineinfo": the body a device POSTs to the ADE enrollment URL,
 * a CMS SignedData around its MachineInfo plist, through
 * ngx_http_mdm_enroll_machineinfo() (ngx_http_mdm_enroll_ade.c): the CMS
 * parse, the signature check against mdm_enroll_device_ca, the plist
 * pre-scan and parser.
 *
 * Input: one byte (bit 0 set: mdm_enroll_device_ca is the test CA of
 * fuzz/pki; clear: off, the plist is read unverified), then the DER.  With
 * the CA, an accepted body must be one OpenSSL's CMS_verify() accepts
 * against the same CA.
 */


#include "fuzz_request.h"
#include "ngx_http_mdm_enroll.h"

#include <openssl/cms.h>
#include <openssl/err.h>


static ngx_http_mdm_loc_conf_t  mlcf;
static ngx_http_mdm_ca_t        ca;
static uint64_t                 runs, accepted, verified;


static void
fuzz_report(void)
{
    fprintf(stderr, "machineinfo: %llu inputs, accepted %llu (%llu with the "
            "device CA)\n", (unsigned long long) runs,
            (unsigned long long) accepted, (unsigned long long) verified);
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ngx_shim_init();
    fuzz_conf_defaults(&mlcf);
    fuzz_ca_init(&ca);

    mlcf.plist_max_nodes = 2000;

    atexit(fuzz_report);

    return 0;
}


static int
fuzz_openssl(ngx_str_t *der)
{
    int               ok;
    const u_char     *q;
    CMS_ContentInfo  *cms;

    q = der->data;
    cms = d2i_CMS_ContentInfo(NULL, &q, (long) der->len);
    if (cms == NULL) {
        return 0;
    }

    ok = CMS_verify(cms, NULL, ca.store, NULL, NULL, CMS_BINARY) == 1;

    CMS_ContentInfo_free(cms);

    return ok;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    plist_t              out;
    ngx_int_t            rc;
    ngx_str_t            der;
    const char          *reason;
    ngx_http_request_t  *r;

    if (size < 1) {
        return 0;
    }

    runs++;

    mlcf.enroll.device_ca = (data[0] & 1) ? ca.store : NULL;

    r = fuzz_request(&mlcf);

    der.len = size - 1;
    der.data = fuzz_copy(r->pool, data + 1, der.len);

    out = NULL;
    reason = NULL;

    rc = ngx_http_mdm_enroll_machineinfo(r, &mlcf.enroll, &der, &out,
                                         &reason);

    fuzz_check(rc == NGX_OK || rc == NGX_DECLINED || rc == NGX_ERROR);

    if (rc == NGX_DECLINED) {
        fuzz_check(reason != NULL && out == NULL);
    }

    if (rc == NGX_OK) {
        accepted++;
        fuzz_check(out != NULL && plist_get_node_type(out) == PLIST_DICT);

        if (mlcf.enroll.device_ca) {
            verified++;

            if (!fuzz_openssl(&der)) {
                fprintf(stderr, "machineinfo: DIFFERENTIAL MISMATCH: the "
                        "module accepted a body OpenSSL does not verify\n");
                abort();
            }
        }
    }

    ERR_clear_error();
    fuzz_request_done(r);

    return 0;
}
