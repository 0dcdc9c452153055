
/*
 * Copyright (C) ngx_mdm contributors
 *
 * The enrollment profile (.mobileconfig): a SCEP payload for the device
 * identity, the MDM payload that uses it, and optionally the CA as a root
 * payload; built as a libplist tree, never by pasting strings, and signed
 * (CMS SignedData, attached) with mdm_enroll_sign.
 */


#include "ngx_http_mdm_enroll.h"
#include "ngx_http_mdm_plist.h"

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/rand.h>


/*
 * Stable identifiers: a profile sent again (renewal, InstallProfile)
 * replaces the installed one only if its PayloadIdentifier is the same.
 */
#define NGX_HTTP_MDM_PROFILE_ID  "ngx-mdm.enrollment"

/* every right an MDM payload can grant (Apple's AccessRights bits) */
#define NGX_HTTP_MDM_ALL_RIGHTS  8191


static ngx_int_t ngx_http_mdm_profile_payload(plist_t dict, const char *type,
    const char *id, const char *display, ngx_str_t *org, u_char *uuid);
static plist_t ngx_http_mdm_profile_scep(ngx_http_mdm_enroll_conf_t *ecf,
    ngx_http_mdm_profile_in_t *in, ngx_str_t *url, ngx_str_t *org,
    u_char *uuid);
static plist_t ngx_http_mdm_profile_mdm(ngx_http_mdm_profile_in_t *in,
    ngx_str_t *server_url, ngx_str_t *checkin_url, ngx_str_t *org,
    u_char *scep_uuid);
static plist_t ngx_http_mdm_profile_root(ngx_str_t *der, ngx_str_t *org);
static ngx_int_t ngx_http_mdm_profile_url(ngx_pool_t *pool, ngx_str_t *conf,
    ngx_http_mdm_profile_in_t *in, const char *path, ngx_str_t *out);
static plist_t ngx_http_mdm_plist_str(ngx_str_t *s);
static ngx_int_t ngx_http_mdm_profile_sign(ngx_pool_t *pool, ngx_log_t *log,
    ngx_http_mdm_enroll_signer_t *signer, ngx_str_t *profile);


ngx_int_t
ngx_http_mdm_enroll_profile(ngx_pool_t *pool, ngx_log_t *log,
    ngx_http_mdm_enroll_conf_t *ecf, ngx_http_mdm_profile_in_t *in,
    ngx_str_t *out)
{
    u_char     uuid[37], scep_uuid[37];
    plist_t    top, content, p;
    ngx_int_t  rc;
    ngx_str_t  server, checkin, scep, org, name;

    if (ngx_http_mdm_profile_url(pool, &ecf->server_url, in, "/mdm/connect",
                                 &server) != NGX_OK
        || ngx_http_mdm_profile_url(pool, &ecf->checkin_url, in,
                                    "/mdm/checkin", &checkin) != NGX_OK
        || ngx_http_mdm_profile_url(pool, &ecf->scep_url, in, "/scep", &scep)
           != NGX_OK
        || ngx_http_mdm_enroll_uuid(uuid) != NGX_OK
        || ngx_http_mdm_enroll_uuid(scep_uuid) != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* the organization defaults to the host devices enroll with */
    org = ecf->organization.len ? ecf->organization : in->host;
    name = ecf->name;

    top = plist_new_dict();
    content = plist_new_array();

    if (top == NULL || content == NULL) {
        plist_free(top);
        plist_free(content);
        return NGX_ERROR;
    }

    plist_dict_set_item(top, "PayloadContent", content);

    rc = NGX_ERROR;

    p = ngx_http_mdm_profile_scep(ecf, in, &scep, &org, scep_uuid);
    if (p == NULL) {
        goto done;
    }
    plist_array_append_item(content, p);

    p = ngx_http_mdm_profile_mdm(in, &server, &checkin, &org, scep_uuid);
    if (p == NULL) {
        goto done;
    }
    plist_array_append_item(content, p);

    if (ecf->ca_der) {
        p = ngx_http_mdm_profile_root(ecf->ca_der, &org);
        if (p == NULL) {
            goto done;
        }
        plist_array_append_item(content, p);
    }

    if (ngx_http_mdm_profile_payload(top, "Configuration",
                                     NGX_HTTP_MDM_PROFILE_ID, NULL, &org,
                                     uuid)
        != NGX_OK)
    {
        goto done;
    }

    plist_dict_set_item(top, "PayloadDisplayName",
                        ngx_http_mdm_plist_str(&name));
    plist_dict_set_item(top, "PayloadRemovalDisallowed",
                        plist_new_bool(0));

    rc = ngx_http_mdm_plist_xml(pool, top, out);

done:

    plist_free(top);

    if (rc != NGX_OK || ecf->signer == NULL || in->nosign) {
        return rc;
    }

    return ngx_http_mdm_profile_sign(pool, log, ecf->signer, out);
}


/* a random (version 4) UUID, upper case as Apple writes them */

ngx_int_t
ngx_http_mdm_enroll_uuid(u_char *buf)
{
    u_char  b[16];

    if (RAND_bytes(b, sizeof(b)) != 1) {
        ERR_clear_error();
        return NGX_ERROR;
    }

    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;

    ngx_sprintf(buf, "%02XD%02XD%02XD%02XD-%02XD%02XD-%02XD%02XD-%02XD%02XD-"
                "%02XD%02XD%02XD%02XD%02XD%02XD%Z",
                b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
                b[10], b[11], b[12], b[13], b[14], b[15]);

    return NGX_OK;
}


/* the keys every payload has */

static ngx_int_t
ngx_http_mdm_profile_payload(plist_t dict, const char *type, const char *id,
    const char *display, ngx_str_t *org, u_char *uuid)
{
    plist_dict_set_item(dict, "PayloadType", plist_new_string(type));
    plist_dict_set_item(dict, "PayloadIdentifier", plist_new_string(id));
    plist_dict_set_item(dict, "PayloadUUID",
                        plist_new_string((char *) uuid));
    plist_dict_set_item(dict, "PayloadVersion", plist_new_uint(1));
    plist_dict_set_item(dict, "PayloadOrganization",
                        ngx_http_mdm_plist_str(org));

    if (display) {
        plist_dict_set_item(dict, "PayloadDisplayName",
                            plist_new_string(display));
    }

    return NGX_OK;
}


static plist_t
ngx_http_mdm_profile_scep(ngx_http_mdm_enroll_conf_t *ecf,
    ngx_http_mdm_profile_in_t *in, ngx_str_t *url, ngx_str_t *org,
    u_char *uuid)
{
    u_char   cn[64], cn_uuid[37];
    plist_t  p, c, subject, rdn, pair;

    if (ngx_http_mdm_enroll_uuid(cn_uuid) != NGX_OK) {
        return NULL;
    }

    /* unique per profile: two devices never ask for the same subject */
    ngx_sprintf(cn, "ngx_mdm identity %s%Z", cn_uuid);

    p = plist_new_dict();
    c = plist_new_dict();
    subject = plist_new_array();

    if (p == NULL || c == NULL || subject == NULL) {
        plist_free(p);
        plist_free(c);
        plist_free(subject);
        return NULL;
    }

    /* Subject: an array of RDNs, each an array of [type, value] pairs */
    if (org->len) {
        rdn = plist_new_array();
        pair = plist_new_array();
        plist_array_append_item(pair, plist_new_string("O"));
        plist_array_append_item(pair, ngx_http_mdm_plist_str(org));
        plist_array_append_item(rdn, pair);
        plist_array_append_item(subject, rdn);
    }

    rdn = plist_new_array();
    pair = plist_new_array();
    plist_array_append_item(pair, plist_new_string("CN"));
    plist_array_append_item(pair, plist_new_string((char *) cn));
    plist_array_append_item(rdn, pair);
    plist_array_append_item(subject, rdn);

    plist_dict_set_item(c, "URL", ngx_http_mdm_plist_str(url));
    plist_dict_set_item(c, "Name", plist_new_string("ngx_mdm"));
    plist_dict_set_item(c, "Subject", subject);
    plist_dict_set_item(c, "Challenge", ngx_http_mdm_plist_str(&in->challenge));
    plist_dict_set_item(c, "Keysize", plist_new_uint(2048));
    plist_dict_set_item(c, "Key Type", plist_new_string("RSA"));
    /* 1 signing + 4 encryption, what the identity certificate allows */
    plist_dict_set_item(c, "Key Usage", plist_new_uint(5));

    plist_dict_set_item(p, "PayloadContent", c);

    ngx_http_mdm_profile_payload(p, "com.apple.security.scep",
                                 NGX_HTTP_MDM_PROFILE_ID ".scep",
                                 "Device identity", org, uuid);

    return p;
}


static plist_t
ngx_http_mdm_profile_mdm(ngx_http_mdm_profile_in_t *in, ngx_str_t *server_url,
    ngx_str_t *checkin_url, ngx_str_t *org, u_char *scep_uuid)
{
    u_char   uuid[37];
    plist_t  p, caps;

    if (ngx_http_mdm_enroll_uuid(uuid) != NGX_OK) {
        return NULL;
    }

    p = plist_new_dict();
    caps = plist_new_array();

    if (p == NULL || caps == NULL) {
        plist_free(p);
        plist_free(caps);
        return NULL;
    }

    plist_array_append_item(caps,
        plist_new_string("com.apple.mdm.per-user-connections"));
    plist_array_append_item(caps,
        plist_new_string("com.apple.mdm.bootstraptoken"));

    plist_dict_set_item(p, "ServerURL", ngx_http_mdm_plist_str(server_url));
    plist_dict_set_item(p, "CheckInURL", ngx_http_mdm_plist_str(checkin_url));
    plist_dict_set_item(p, "Topic", ngx_http_mdm_plist_str(&in->topic));
    plist_dict_set_item(p, "IdentityCertificateUUID",
                        plist_new_string((char *) scep_uuid));
    plist_dict_set_item(p, "SignMessage", plist_new_bool(1));
    plist_dict_set_item(p, "AccessRights",
                        plist_new_uint(NGX_HTTP_MDM_ALL_RIGHTS));
    plist_dict_set_item(p, "CheckOutWhenRemoved", plist_new_bool(1));
    plist_dict_set_item(p, "ServerCapabilities", caps);

    ngx_http_mdm_profile_payload(p, "com.apple.mdm",
                                 NGX_HTTP_MDM_PROFILE_ID ".mdm",
                                 "Device management", org, uuid);

    return p;
}


static plist_t
ngx_http_mdm_profile_root(ngx_str_t *der, ngx_str_t *org)
{
    u_char   uuid[37];
    plist_t  p;

    if (ngx_http_mdm_enroll_uuid(uuid) != NGX_OK) {
        return NULL;
    }

    p = plist_new_dict();
    if (p == NULL) {
        return NULL;
    }

    plist_dict_set_item(p, "PayloadContent",
                        plist_new_data((const char *) der->data, der->len));
    plist_dict_set_item(p, "PayloadCertificateFileName",
                        plist_new_string("ca.cer"));

    ngx_http_mdm_profile_payload(p, "com.apple.security.root",
                                 NGX_HTTP_MDM_PROFILE_ID ".ca",
                                 "Certificate authority", org, uuid);

    return p;
}


/* a configured URL, or SCHEME://HOST/PATH of the request */

static ngx_int_t
ngx_http_mdm_profile_url(ngx_pool_t *pool, ngx_str_t *conf,
    ngx_http_mdm_profile_in_t *in, const char *path, ngx_str_t *out)
{
    size_t  len;

    if (conf->len) {
        *out = *conf;
        return NGX_OK;
    }

    len = in->scheme.len + sizeof("://") - 1 + in->host.len + ngx_strlen(path);

    out->data = ngx_pnalloc(pool, len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    out->len = ngx_sprintf(out->data, "%V://%V%s", &in->scheme, &in->host,
                           path)
               - out->data;

    return NGX_OK;
}


/* libplist wants a C string (and copies it) */

static plist_t
ngx_http_mdm_plist_str(ngx_str_t *s)
{
    char     *z;
    plist_t   p;

    z = malloc(s->len + 1);
    if (z == NULL) {
        return plist_new_string("");
    }

    ngx_memcpy(z, s->data, s->len);
    z[s->len] = '\0';

    p = plist_new_string(z);
    free(z);

    return p;
}


/*
 * CMS SignedData with the profile inside (attached), the signer and its
 * chain included, so that a device can show the profile as verified.
 * CMS_BINARY: the XML is signed byte for byte, not as MIME text.  Touches
 * no nginx structure: it runs in a thread pool too.  The DER is
 * OPENSSL_malloc()ed; returns its length, or -1.
 */

int
ngx_http_mdm_enroll_sign_der(ngx_http_mdm_enroll_signer_t *signer,
    u_char *data, size_t len, u_char **out)
{
    int               n;
    BIO              *in;
    CMS_ContentInfo  *cms;

    n = -1;
    cms = NULL;
    *out = NULL;

    in = BIO_new_mem_buf(data, (int) len);

    if (in != NULL) {
        cms = CMS_sign(signer->cert, signer->key, signer->chain, in,
                       CMS_BINARY | CMS_NOSMIMECAP);
    }

    if (cms != NULL) {
        n = i2d_CMS_ContentInfo(cms, out);
    }

    BIO_free(in);
    CMS_ContentInfo_free(cms);

    if (n <= 0) {
        OPENSSL_free(*out);
        *out = NULL;
        n = -1;
    }

    return n;
}


static ngx_int_t
ngx_http_mdm_profile_sign(ngx_pool_t *pool, ngx_log_t *log,
    ngx_http_mdm_enroll_signer_t *signer, ngx_str_t *profile)
{
    int      n;
    u_char  *der;

    n = ngx_http_mdm_enroll_sign_der(signer, profile->data, profile->len,
                                     &der);
    if (n < 0) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "mdm: signing the enrollment profile failed: %s",
                      ERR_reason_error_string(ERR_peek_last_error()));
        ERR_clear_error();
        return NGX_ERROR;
    }

    profile->data = ngx_pnalloc(pool, n);
    if (profile->data != NULL) {
        ngx_memcpy(profile->data, der, n);
        profile->len = n;
    }

    OPENSSL_free(der);

    return profile->data ? NGX_OK : NGX_ERROR;
}
