/*
 * Copyright (C) ngx_mdm contributors
 *
 * mdmctl: the configuration.  Each setting from the command line
 * (--server, --api-key-file, ...), else the environment (MDM_SERVER,
 * MDM_API_KEY, MDMCERT_URL, MDMCERT_API_KEY), else the config file
 * (--config, MDMCTL_CONFIG, $XDG_CONFIG_HOME/mdmctl/config,
 * ~/.config/mdmctl/config).
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mdmctl.h"


static int mc_read_config(mc_conf_t *conf, const char *path,
    int must_exist);


/* ---------------------------------------------------------------------
 * configuration: each setting from the command line, else the
 * environment, else the config file
 * --------------------------------------------------------------------- */

static char *
mc_trim_key(char *s)
{
    size_t  n;

    if (s == NULL) {
        return NULL;
    }
    n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '
                 || s[n - 1] == '\t'))
    {
        s[--n] = '\0';
    }
    return s;
}


/* globals: the values of the global options, by their index in mdmctl.c's
 * table: server 0, api-key-file 1, config 2, json 3, timeout 4, verbose 5,
 * cacert 6 */
int
mc_configure(mc_conf_t *conf, const char **globals)
{
    char        *dir, *path, *key;
    const char  *v, *cfg;
    size_t       len;
    long         t;

    /* index in mc_global_opts: server 0, api-key-file 1, config 2,
     * json 3, timeout 4, verbose 5, cacert 6 */
    cfg = globals[2];
    if (cfg == NULL) {
        cfg = getenv("MDMCTL_CONFIG");
    }
    if (cfg) {
        if (mc_read_config(conf, cfg, 1) != 0) {
            return MC_USAGE;
        }
    } else {
        dir = mc_config_dir();
        if (dir) {
            len = strlen(dir) + sizeof("/config");
            path = malloc(len);
            if (path) {
                snprintf(path, len, "%s/config", dir);
                if (mc_read_config(conf, path, 0) != 0) {
                    free(path);
                    free(dir);
                    return MC_USAGE;
                }
                free(path);
            }
            free(dir);
        }
    }

    v = globals[0] ? globals[0] : getenv("MDM_SERVER");
    if (v && *v) {
        free(conf->server);
        conf->server = mc_strdup(v);
    }

    if (globals[1]) {
        key = mc_trim_key(mc_read_file(globals[1], &len));
        if (key == NULL) {
            mc_err("cannot read the API key from %s: %s", globals[1],
                   strerror(errno));
            return MC_USAGE;
        }
        free(conf->api_key);
        conf->api_key = key;
    } else if ((v = getenv("MDM_API_KEY")) && *v) {
        free(conf->api_key);
        conf->api_key = mc_strdup(v);
    }

    if ((v = getenv("MDMCERT_URL")) && *v) {
        free(conf->mdmcert_url);
        conf->mdmcert_url = mc_strdup(v);
    }
    if ((v = getenv("MDMCERT_API_KEY")) && *v) {
        free(conf->mdmcert_api_key);
        conf->mdmcert_api_key = mc_strdup(v);
    }
    if (conf->mdmcert_url == NULL) {
        conf->mdmcert_url = mc_strdup(MC_DEFAULT_MDMCERT_URL);
    }

    if (conf->server) {
        len = strlen(conf->server);
        while (len && conf->server[len - 1] == '/') {
            conf->server[--len] = '\0';
        }
    }

    conf->json = conf->json || globals[3] != NULL;
    if (conf->timeout == 0) {
        conf->timeout = 30;
    }
    if (globals[4]) {
        if (mc_parse_long(globals[4], 1, 3600, &t) != 0) {
            return mc_usage_error(NULL, "--timeout is 1-3600 seconds");
        }
        conf->timeout = t;
    }
    conf->verbose = globals[5] != NULL;
    if (globals[6]) {
        free(conf->cacert);
        conf->cacert = mc_strdup(globals[6]);
    }
    if (conf->cacert && access(conf->cacert, R_OK) != 0) {
        mc_err("cannot read the CA file %s: %s", conf->cacert,
               strerror(errno));
        return MC_USAGE;
    }

    if (conf->pushcert_dir == NULL) {
        dir = mc_config_dir();
        if (dir) {
            len = strlen(dir) + sizeof("/pushcert");
            conf->pushcert_dir = malloc(len);
            if (conf->pushcert_dir) {
                snprintf(conf->pushcert_dir, len, "%s/pushcert", dir);
            }
            free(dir);
        }
    }
    return MC_OK;
}


char *
mc_config_dir(void)
{
    char        *d;
    size_t       len;
    const char  *base, *home;

    base = getenv("XDG_CONFIG_HOME");
    if (base && *base) {
        len = strlen(base) + sizeof("/mdmctl");
        d = malloc(len);
        if (d) {
            snprintf(d, len, "%s/mdmctl", base);
        }
        return d;
    }
    home = getenv("HOME");
    if (home == NULL || *home == '\0') {
        return NULL;
    }
    len = strlen(home) + sizeof("/.config/mdmctl");
    d = malloc(len);
    if (d) {
        snprintf(d, len, "%s/.config/mdmctl", home);
    }
    return d;
}


/* "key = value" lines, "#" comments; unknown keys are an error, so a
 * typo does not go unnoticed */
static int
mc_read_config(mc_conf_t *conf, const char *path, int must_exist)
{
    int      lineno, rc;
    char    *data, *line, *next, *k, *v, *e, **dst, *key;
    size_t   len;

    data = mc_read_file(path, &len);
    if (data == NULL) {
        if (errno == ENOENT && !must_exist) {
            return 0;
        }
        mc_err("cannot read the config file %s: %s", path, strerror(errno));
        return -1;
    }

    rc = 0;
    lineno = 0;
    for (line = data; line && *line; line = next) {
        lineno++;
        next = strchr(line, '\n');
        if (next) {
            *next++ = '\0';
        }
        while (*line == ' ' || *line == '\t') {
            line++;
        }
        if (*line == '#' || *line == '\0' || *line == '\r') {
            continue;
        }
        k = line;
        e = strchr(line, '=');
        if (e == NULL) {
            mc_err("%s:%d: want \"key = value\"", path, lineno);
            rc = -1;
            break;
        }
        *e = '\0';
        v = e + 1;
        mc_trim_key(k);
        while (*v == ' ' || *v == '\t') {
            v++;
        }
        mc_trim_key(v);

        dst = NULL;
        if (strcmp(k, "server") == 0) {
            dst = &conf->server;
        } else if (strcmp(k, "api_key") == 0) {
            dst = &conf->api_key;
        } else if (strcmp(k, "mdmcert_url") == 0) {
            dst = &conf->mdmcert_url;
        } else if (strcmp(k, "mdmcert_api_key") == 0) {
            dst = &conf->mdmcert_api_key;
        } else if (strcmp(k, "pushcert_dir") == 0) {
            dst = &conf->pushcert_dir;
        } else if (strcmp(k, "cacert") == 0) {
            dst = &conf->cacert;
        } else if (strcmp(k, "api_key_file") == 0) {
            key = mc_trim_key(mc_read_file(v, &len));
            if (key == NULL) {
                mc_err("%s:%d: cannot read %s: %s", path, lineno, v,
                       strerror(errno));
                rc = -1;
                break;
            }
            free(conf->api_key);
            conf->api_key = key;
            continue;
        } else if (strcmp(k, "timeout") == 0) {
            if (mc_parse_long(v, 1, 3600, &conf->timeout) != 0) {
                mc_err("%s:%d: timeout is 1-3600 seconds", path, lineno);
                rc = -1;
                break;
            }
            continue;
        } else if (strcmp(k, "json") == 0) {
            conf->json = (strcmp(v, "1") == 0 || strcmp(v, "true") == 0
                       || strcmp(v, "yes") == 0);
            continue;
        } else {
            mc_err("%s:%d: unknown setting \"%s\"", path, lineno, k);
            rc = -1;
            break;
        }
        free(*dst);
        *dst = mc_strdup(v);
    }

    free(data);
    return rc;
}


