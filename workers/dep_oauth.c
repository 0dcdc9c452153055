/*
 * Copyright (C) ngx_mdm contributors
 *
 * OAuth 1.0a (RFC 5849) HMAC-SHA1 for DEP's GET /session: the signature
 * base string is "GET&" pct(url) "&" pct(sorted params), the key
 * pct(consumer_secret) "&" pct(access_secret); realm is not signed.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "dep.h"


/* RFC 3986 percent-encoding: all but the unreserved set */
static char *
mw_pct(const char *s)
{
    char        *out, *p;
    const char  *hex = "0123456789ABCDEF";

    out = malloc(strlen(s) * 3 + 1);
    if (out == NULL) {
        return NULL;
    }

    for (p = out; *s; s++) {
        unsigned char  c = (unsigned char) *s;

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
            || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
            || c == '~')
        {
            *p++ = (char) c;
        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }

    *p = '\0';

    return out;
}


char *
mw_dep_oauth_header(const char *url, const char *ck, const char *cs,
    const char *at, const char *as)
{
    int             i;
    char            nonce[33], ts[24], *params, *base, *key, *hdr;
    char           *pck, *pat, *purl, *pparams, *pcs, *pas, *psig;
    unsigned char   rnd[16], md[EVP_MAX_MD_SIZE], sig[64];
    unsigned int    mdlen;
    size_t          len;

    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        return NULL;
    }

    for (i = 0; i < 16; i++) {
        snprintf(nonce + i * 2, 3, "%02x", rnd[i]);
    }

    snprintf(ts, sizeof(ts), "%lld", (long long) time(NULL));

    pck = mw_pct(ck);
    pat = mw_pct(at);
    purl = mw_pct(url);
    pcs = mw_pct(cs);
    pas = mw_pct(as);
    params = base = key = hdr = pparams = psig = NULL;

    if (!pck || !pat || !purl || !pcs || !pas) {
        goto done;
    }

    /* sorted by name: consumer_key, nonce, signature_method, timestamp,
     * token, version */
    len = strlen(pck) + strlen(pat) + 256;
    params = malloc(len);
    if (params == NULL) {
        goto done;
    }

    snprintf(params, len, "oauth_consumer_key=%s&oauth_nonce=%s"
             "&oauth_signature_method=HMAC-SHA1&oauth_timestamp=%s"
             "&oauth_token=%s&oauth_version=1.0", pck, nonce, ts, pat);

    pparams = mw_pct(params);
    if (pparams == NULL) {
        goto done;
    }

    len = strlen(purl) + strlen(pparams) + 8;
    base = malloc(len);
    key = malloc(strlen(pcs) + strlen(pas) + 2);
    if (base == NULL || key == NULL) {
        goto done;
    }

    snprintf(base, len, "GET&%s&%s", purl, pparams);
    sprintf(key, "%s&%s", pcs, pas);

    if (HMAC(EVP_sha1(), key, (int) strlen(key), (unsigned char *) base,
             strlen(base), md, &mdlen) == NULL)
    {
        goto done;
    }

    EVP_EncodeBlock(sig, md, (int) mdlen);

    psig = mw_pct((char *) sig);
    if (psig == NULL) {
        goto done;
    }

    /* one line, as Apple's example */
    len = strlen(pck) + strlen(pat) + strlen(psig) + 256;
    hdr = malloc(len);
    if (hdr) {
        snprintf(hdr, len, "Authorization: OAuth realm=\"ADM\", "
                 "oauth_consumer_key=\"%s\", oauth_token=\"%s\", "
                 "oauth_signature_method=\"HMAC-SHA1\", "
                 "oauth_signature=\"%s\", oauth_timestamp=\"%s\", "
                 "oauth_nonce=\"%s\", oauth_version=\"1.0\"",
                 pck, pat, psig, ts, nonce);
    }

done:

    free(pck); free(pat); free(purl); free(pcs); free(pas);
    free(params); free(pparams); free(base); free(key); free(psig);

    return hdr;
}
