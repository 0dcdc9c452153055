/*
 * Copyright (C) ngx_mdm contributors
 *
 * mdmctl: what the pushcert commands share (mdmctl_pushcert.c,
 * mdmctl_pushcert_sign.c): the files of the pushcert directory, reading
 * certificates and keys in PEM or DER, making the push key and its CSR.
 */

#ifndef MDMCTL_PKI_H
#define MDMCTL_PKI_H

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "mdmctl.h"


/* the files of the pushcert directory */
#define MC_PUSH_KEY      "push.key"      /* the push key, 0600 */
#define MC_PUSH_CSR      "push.csr"      /* its CSR (PEM) */
#define MC_PUSH_REQ      "push.req"      /* what the portal takes */
#define MC_PUSH_CERT     "push.pem"      /* the certificate uploaded last */
#define MC_XCHG_KEY      "mdmcert.key"   /* mdmcert.download's exchange */
#define MC_XCHG_CERT     "mdmcert.pem"   /* key and certificate */


const char *mc_pc_dir(const mc_cmd_t *cmd, mc_args_t *a);
char *mc_pc_path(const char *dir, const char *file);
int mc_pc_mkdir(const char *dir);
void mc_ssl_err(const char *what);

X509 *mc_load_cert(const char *path);
EVP_PKEY *mc_load_key(const char *path);
X509_REQ *mc_load_csr(const char *path);
char *mc_cert_pem(X509 *x);
unsigned char *mc_unb64(const char *s, size_t *len);

int mc_make_push_csr(const char *dir, const char *email, const char *org,
    const char *country, int new_key);

#endif /* MDMCTL_PKI_H */
