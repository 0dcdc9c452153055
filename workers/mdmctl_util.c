/*
 * Copyright (C) ngx_mdm contributors
 *
 * mdmctl: small helpers the commands share: numbers, files, strings,
 * base64.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "mdmctl.h"


/* ---------------------------------------------------------------------
 * helpers
 * --------------------------------------------------------------------- */

int
mc_parse_long(const char *s, long min, long max, long *out)
{
    char  *end;
    long   v;

    if (s == NULL || *s == '\0') {
        return -1;
    }
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}


/* the server's names (VPP locations, blueprints) and serials: 1-64 of
 * A-Z a-z 0-9 . _ - */
int
mc_word(const char *s)
{
    size_t  i;

    for (i = 0; s[i]; i++) {
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z')
              || (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_'
              || s[i] == '-'))
        {
            return 0;
        }
    }
    return i > 0 && i <= 64;
}


/* a usage error (nothing sent) when name is not a word; what: "a
 * blueprint name" */
int
mc_name_check(const mc_cmd_t *cmd, const char *name, const char *what)
{
    if (!mc_word(name)) {
        return mc_usage_error(cmd, "%s is 1-64 of A-Z a-z 0-9 . _ -", what);
    }
    return MC_OK;
}


/* the whole file, NUL-terminated (binary files too: len says how long);
 * NULL with errno set */
char *
mc_read_file(const char *path, size_t *len)
{
    int      fd, e;
    char    *buf, *nb;
    size_t   cap, n;
    ssize_t  r;

    fd = strcmp(path, "-") == 0 ? dup(0) : open(path, O_RDONLY);
    if (fd < 0) {
        return NULL;
    }

    cap = 4096;
    n = 0;
    buf = malloc(cap);
    if (buf == NULL) {
        close(fd);
        errno = ENOMEM;
        return NULL;
    }

    for ( ;; ) {
        if (n + 1 >= cap) {
            if (cap >= 64 * 1024 * 1024) {
                free(buf);
                close(fd);
                errno = EFBIG;
                return NULL;
            }
            cap *= 2;
            nb = realloc(buf, cap);
            if (nb == NULL) {
                free(buf);
                close(fd);
                errno = ENOMEM;
                return NULL;
            }
            buf = nb;
        }
        r = read(fd, buf + n, cap - n - 1);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            e = errno;
            free(buf);
            close(fd);
            errno = e;
            return NULL;
        }
        if (r == 0) {
            break;
        }
        n += r;
    }

    close(fd);
    buf[n] = '\0';
    if (len) {
        *len = n;
    }
    return buf;
}


/* writes a file with this mode; refuses to replace one unless overwrite */
int
mc_write_file(const char *path, const void *data, size_t len, int mode,
    int overwrite)
{
    int          fd;
    ssize_t      w;
    const char  *p = data;

    fd = open(path, O_WRONLY | O_CREAT | (overwrite ? O_TRUNC : O_EXCL),
              mode);
    if (fd < 0) {
        mc_err("cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    /* an existing file keeps its mode with O_TRUNC: a key must not */
    if (fchmod(fd, mode) != 0) {
        mc_err("cannot chmod %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    while (len) {
        w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            mc_err("cannot write %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        p += w;
        len -= w;
    }
    if (close(fd) != 0) {
        mc_err("cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}


char *
mc_strdup(const char *s)
{
    char  *d;

    d = strdup(s);
    if (d == NULL) {
        mc_err("out of memory");
        exit(MC_SERVER);
    }
    return d;
}


/* "A,B,C", each ID URL-escaped */
char *
mc_join_ids(char **ids, int n)
{
    int      i;
    char    *out, *e;
    size_t   len, cap;

    cap = 1;
    for (i = 0; i < n; i++) {
        cap += 3 * strlen(ids[i]) + 1;
    }
    out = malloc(cap);
    if (out == NULL) {
        mc_err("out of memory");
        exit(MC_SERVER);
    }
    len = 0;
    out[0] = '\0';
    for (i = 0; i < n; i++) {
        e = mc_escape(ids[i]);
        len += snprintf(out + len, cap - len, "%s%s", i ? "," : "", e);
        free(e);
    }
    return out;
}


/* base64, one line */
char *
mc_b64(const void *p, size_t len)
{
    char  *out;

    out = malloc(4 * ((len + 2) / 3) + 1);
    if (out == NULL) {
        mc_err("out of memory");
        exit(MC_SERVER);
    }
    EVP_EncodeBlock((unsigned char *) out, p, (int) len);
    return out;
}
