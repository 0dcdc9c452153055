/*
 * Copyright (C) ngx_mdm contributors
 *
 * mdmctl: main, the command table, the option parser and the help.
 */

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "mdmctl.h"


static const mc_opt_t  mc_global_opts[] = {
    { "server", "URL", "the server's base URL, e.g. https://mdm.example.com "
      "(else MDM_SERVER, else \"server\" in the config file)" },
    { "api-key-file", "FILE", "file holding the API key (else MDM_API_KEY, "
      "else \"api_key\" or \"api_key_file\" in the config file)" },
    { "config", "FILE", "the config file (default "
      "$XDG_CONFIG_HOME/mdmctl/config or ~/.config/mdmctl/config)" },
    { "json", NULL, "print the API's JSON instead of tables" },
    { "timeout", "SECONDS", "give up on a request after this long "
      "(default 30)" },
    { "verbose", NULL, "say on stderr what is sent where" },
    { "cacert", "FILE", "trust the server's TLS certificate to these CAs "
      "(PEM; default the system's)" },
    { "help", NULL, "this help; \"mdmctl COMMAND --help\" for one command" },
    { NULL, NULL, NULL }
};

static const mc_opt_t  mc_no_opts[] = { { NULL, NULL, NULL } };

static const mc_opt_t  mc_devices_opts[] = {
    { "filter", "KEY=VALUE", "a filter of GET /v1/enrollments, repeatable: "
      "type=Device, enabled=1, serial=…, model=…, os_version=…, "
      "last_seen_after=MS, last_seen_before=MS, cert_expires_before=S" },
    { "limit", "N", "page size asked of the server (1-1000, default 100)" },
    { "max", "N", "stop after N devices (default: all pages)" },
    { NULL, NULL, NULL }
};

static const mc_opt_t  mc_page_opts[] = {
    { "limit", "N", "page size asked of the server (1-1000)" },
    { "max", "N", "stop after N items (default: all pages)" },
    { NULL, NULL, NULL }
};

static const mc_opt_t  mc_certs_opts[] = {
    { "subject", "TEXT", "only certificates whose subject contains TEXT" },
    { "expiring-before", "UNIX_SECONDS", "only those expiring before" },
    { "limit", "N", "page size asked of the server (1-1000)" },
    { "max", "N", "stop after N certificates (default: all pages)" },
    { NULL, NULL, NULL }
};

static const mc_opt_t  mc_replay_opts[] = {
    { "count", "N", "how many dead letters, oldest first (1-1000, "
      "default 100)" },
    { NULL, NULL, NULL }
};

static const mc_opt_t  mc_send_opts[] = {
    { "plist", "FILE", "send this command plist as it is (PUT /v1/enqueue) "
      "instead of a template" },
    { "priority", NULL, "queue in the priority lane" },
    { "expires", "SECONDS", "the command expires after this long" },
    { "nopush", NULL, "queue only, send no push" },
    { "max-deliveries", "N", "give up after N deliveries" },
    { "uuid", "UUID", "the command's CommandUUID (default: the server "
      "makes one)" },
    { NULL, NULL, NULL }
};

static const mc_opt_t  mc_request_opts[] = {
    { "email", "ADDRESS", "your Apple ID's email (in the CSR's subject)" },
    { "org", "NAME", "your organization (O= of the CSR)" },
    { "country", "CC", "two-letter country (default US)" },
    { "dir", "DIR", "where the key and CSR go (default "
      "~/.config/mdmctl/pushcert)" },
    { "force", NULL, "replace an existing push key (the topic changes "
      "with it: renew with the old key instead)" },
    { NULL, NULL, NULL }
};

static const mc_opt_t  mc_vendor_opts[] = {
    { "csr", "FILE", "the customer's CSR, PEM or DER (default push.csr in "
      "--dir)" },
    { "vendor-cert", "FILE", "your MDM CSR-signing certificate from Apple "
      "(PEM or DER)" },
    { "vendor-key", "FILE", "its private key (PEM, unencrypted)" },
    { "apple-intermediate", "FILE", "Apple's WWDR intermediate certificate "
      "(PEM or DER)" },
    { "apple-root", "FILE", "Apple's root certificate (PEM or DER)" },
    { "sha1", NULL, "sign with SHA-1 as old tools did (default SHA-256)" },
    { "out", "FILE", "where the request for the portal goes (default "
      "push.req in --dir)" },
    { "dir", "DIR", "the pushcert directory (default "
      "~/.config/mdmctl/pushcert)" },
    { NULL, NULL, NULL }
};

static const mc_opt_t  mc_mdmcert_opts[] = {
    { "email", "ADDRESS", "the email you registered at mdmcert.download" },
    { "org", "NAME", "your organization, if a new CSR is made" },
    { "country", "CC", "two-letter country, if a new CSR is made" },
    { "url", "URL", "the service's sign-request URL (else MDMCERT_URL, "
      "else \"mdmcert_url\", else " MC_DEFAULT_MDMCERT_URL ")" },
    { "api-key", "KEY", "the service's API key for this tool (else "
      "MDMCERT_API_KEY, else \"mdmcert_api_key\" in the config file)" },
    { "dir", "DIR", "the pushcert directory (default "
      "~/.config/mdmctl/pushcert)" },
    { NULL, NULL, NULL }
};

static const mc_opt_t  mc_decrypt_opts[] = {
    { "out", "FILE", "where the request for the portal goes (default "
      "push.req in --dir)" },
    { "dir", "DIR", "the pushcert directory (default "
      "~/.config/mdmctl/pushcert)" },
    { NULL, NULL, NULL }
};

static const mc_opt_t  mc_upload_opts[] = {
    { "key", "FILE", "the push key (default push.key in --dir)" },
    { "force", NULL, "store a certificate for a new topic (every device "
      "must re-enroll)" },
    { "dir", "DIR", "the pushcert directory (default "
      "~/.config/mdmctl/pushcert)" },
    { NULL, NULL, NULL }
};

static const mc_opt_t  mc_show_opts[] = {
    { "dir", "DIR", "the pushcert directory, whose push.pem names the "
      "topic when none is given" },
    { NULL, NULL, NULL }
};

/* vpp (mdmctl_vpp.c) */
static const mc_opt_t  mc_vpp_token_opts[] = {
    { "force", NULL, "take over a location another MDM manages" },
    { NULL, NULL, NULL }
};

static const mc_opt_t  mc_vpp_config_opts[] = {
    { "base-url", "URL", "Apple's API (default "
      "https://vpp.itunes.apple.com/mdm/v2; \"\" resets it)" },
    { "notify-url", "URL", "where Apple posts notifications (a location "
      "with mdm_vpp_notify; \"\" for none)" },
    { NULL, NULL, NULL }
};

static const mc_opt_t  mc_vpp_asg_opts[] = {
    { "serial", "SERIAL", "the apps a device has licenses of" },
    { "adam-id", "ID", "the devices that have a license of this app" },
    { NULL, NULL, NULL }
};

static const mc_opt_t  mc_vpp_install_opts[] = {
    { "by-id", NULL, "the devices are enrollment ids, not serials" },
    { "management-flags", "N", "InstallApplication's ManagementFlags "
      "(1 remove with the MDM profile, 4 no backup, 5 both)" },
    { "pricing", "STDQ|PLUS", "the license kind (default STDQ)" },
    { NULL, NULL, NULL }
};

static const mc_opt_t  mc_vpp_remove_opts[] = {
    { "by-id", NULL, "the devices are enrollment ids, not serials" },
    { "pricing", "STDQ|PLUS", "the license kind (default STDQ)" },
    { NULL, NULL, NULL }
};

static const mc_opt_t  mc_vpp_status_opts[] = {
    { "state", "STATE", "only devices in this state (pending, associated, "
      "queued, failed, no_enrollment)" },
    { "limit", "N", "page size asked of the server (1-1000)" },
    { "max", "N", "stop after N devices (default: all pages)" },
    { NULL, NULL, NULL }
};



static const mc_cmd_t  mc_cmds[] = {
    { "devices", "", "List enrollments (GET /v1/enrollments), every page.",
      mc_devices_opts, 0, 1, mc_cmd_devices },
    { "device", "ID", "Show one enrollment (GET /v1/enrollments/ID).",
      mc_no_opts, 0, 1, mc_cmd_device },
    { "queue", "ID", "Pending commands of an enrollment (GET /v1/queue/ID).",
      mc_page_opts, 0, 1, mc_cmd_queue },
    { "result", "UUID", "A command and its status on each enrollment "
      "(GET /v1/commands/UUID).", mc_page_opts, 0, 1, mc_cmd_result },
    { "clear", "ID [UUID]", "Empty an enrollment's queue, or remove one "
      "command from it (DELETE /v1/queue/ID[/UUID]).",
      mc_no_opts, 0, 1, mc_cmd_clear },
    { "push", "ID...", "Send APNs pushes (POST /v1/push/IDS).",
      mc_no_opts, 0, 1, mc_cmd_push },
    { "send", "ID... TEMPLATE [--KEY VALUE...] | ID... --plist FILE",
      "Queue a command built from a template (POST /v1/commands/IDS; "
      "\"mdmctl templates\" lists them and their keys: --phone-number for "
      "phone_number, --KEY-file FILE reads a data key's bytes or an array's "
      "or dict's JSON from a file) or a raw plist (PUT /v1/enqueue/IDS).",
      mc_send_opts, 1, 1, mc_cmd_send },
    { "templates", "[TEMPLATE]", "The command templates and their keys "
      "(GET /v1/templates).", mc_no_opts, 0, 1, mc_cmd_templates },
    { "certs", "", "Certificates the SCEP CA issued (GET /v1/certificates).",
      mc_certs_opts, 0, 1, mc_cmd_certs },
    { "events", "", "Webhook delivery: backlog and dead letters "
      "(GET /v1/webhooks).", mc_page_opts, 0, 1, mc_cmd_events },
    { "events replay", "", "Deliver dead letters again "
      "(POST /v1/webhooks/replay).", mc_replay_opts, 0, 1,
      mc_cmd_events_replay },
    { "blueprint put", "NAME FILE", "Store a blueprint from a JSON file "
      "(PUT /v1/blueprints/NAME).", mc_no_opts, 0, 1, mc_cmd_blueprint_put },
    { "blueprint list", "", "List blueprints (GET /v1/blueprints).",
      mc_no_opts, 0, 1, mc_cmd_blueprint_list },
    { "blueprint show", "NAME", "Show a blueprint (GET /v1/blueprints/NAME).",
      mc_no_opts, 0, 1, mc_cmd_blueprint_show },
    { "blueprint delete", "NAME", "Delete a blueprint "
      "(DELETE /v1/blueprints/NAME).", mc_no_opts, 0, 1,
      mc_cmd_blueprint_delete },
    { "pushcert request", "", "Make the push key (mode 0600) and a CSR "
      "for it: push.key, push.csr.", mc_request_opts, 0, 0,
      mc_cmd_pushcert_request },
    { "pushcert vendor-sign", "", "Sign a CSR with an MDM vendor "
      "certificate: the base64 plist the Apple Push Certificates Portal "
      "takes.", mc_vendor_opts, 0, 0, mc_cmd_pushcert_vendor_sign },
    { "pushcert mdmcert-download", "", "Have mdmcert.download sign the CSR "
      "(made first if there is none); it emails back an encrypted request "
      "for \"pushcert decrypt\".", mc_mdmcert_opts, 0, 0,
      mc_cmd_pushcert_mdmcert },
    { "pushcert decrypt", "FILE", "Decrypt the request mdmcert.download "
      "emailed (hex of a CMS envelope) into the file for the portal.",
      mc_decrypt_opts, 0, 0, mc_cmd_pushcert_decrypt },
    { "pushcert upload", "CERT", "Store the push certificate from Apple "
      "with the kept key (PUT /v1/pushcert).", mc_upload_opts, 0, 1,
      mc_cmd_pushcert_upload },
    { "pushcert show", "[TOPIC]", "A stored push certificate's expiry "
      "(GET /v1/pushcert?topic=).", mc_show_opts, 0, 1,
      mc_cmd_pushcert_show },
    { "vpp tokens", "[NAME]", "Apps and Books locations: org, location, "
      "token expiry, warnings, stops (GET /v1/vpp/tokens[/NAME]).",
      mc_no_opts, 0, 1, mc_cmd_vpp_tokens },
    { "vpp token-put", "NAME FILE", "Give a location its content token "
      "file, as downloaded (PUT /v1/vpp/tokens/NAME).", mc_vpp_token_opts,
      0, 1, mc_cmd_vpp_token_put },
    { "vpp token-delete", "NAME", "Forget a location and all it holds "
      "(DELETE /v1/vpp/tokens/NAME).", mc_no_opts, 0, 1,
      mc_cmd_vpp_token_delete },
    { "vpp config", "NAME", "Show or set a location's base_url and "
      "notify_url (GET|PUT /v1/vpp/config/NAME).", mc_vpp_config_opts, 0, 1,
      mc_cmd_vpp_config },
    { "vpp assets", "NAME", "A location's licenses by app "
      "(GET /v1/vpp/assets/NAME), every page.", mc_page_opts, 0, 1,
      mc_cmd_vpp_assets },
    { "vpp assignments", "NAME", "Licenses of a serial or of an app "
      "(GET /v1/vpp/assignments/NAME).", mc_vpp_asg_opts, 0, 1,
      mc_cmd_vpp_assignments },
    { "vpp sync", "NAME", "Refresh a location from Apple now "
      "(POST /v1/vpp/sync/NAME).", mc_no_opts, 0, 1, mc_cmd_vpp_sync },
    { "vpp install", "NAME ADAM_ID SERIAL...", "Give devices an app's "
      "license and install it (POST /v1/vpp/install/NAME).",
      mc_vpp_install_opts, 0, 1, mc_cmd_vpp_install },
    { "vpp remove", "NAME ADAM_ID BUNDLE_ID SERIAL...", "Remove an app "
      "and take its licenses back (POST /v1/vpp/remove/NAME).",
      mc_vpp_remove_opts, 0, 1, mc_cmd_vpp_install },
    { "vpp install-status", "NAME INSTALL_ID", "An install's outcome, "
      "device by device (GET /v1/vpp/install/NAME/ID).",
      mc_vpp_status_opts, 0, 1, mc_cmd_vpp_install_status },
    { "version", "", "The server's version (GET /version).",
      mc_no_opts, 0, 1, mc_cmd_version },
    { NULL, NULL, NULL, NULL, 0, 0, NULL }
};


static void mc_help_opts(FILE *f, const mc_opt_t *o);
static void mc_help_cmd(FILE *f, const mc_cmd_t *cmd, int full);
static void mc_help(FILE *f, const char *group);
static const mc_cmd_t *mc_find_cmd(int argc, char **argv, int *i);
static int mc_is_group(const char *name);
static int mc_parse(int argc, char **argv, const mc_cmd_t **cmdp,
    mc_args_t *a, const char **globals);


int
main(int argc, char **argv)
{
    int             rc, i;
    mc_args_t       a;
    mc_conf_t       conf;
    const mc_cmd_t *cmd = NULL;
    const char     *globals[sizeof(mc_global_opts) / sizeof(mc_opt_t)];

    memset(&a, 0, sizeof(a));
    memset(&conf, 0, sizeof(conf));
    memset(globals, 0, sizeof(globals));
    a.conf = &conf;

    rc = mc_parse(argc, argv, &cmd, &a, globals);
    if (rc >= 0) {
        goto done;
    }

    rc = mc_configure(&conf, globals);
    if (rc != MC_OK) {
        goto done;
    }

    if (cmd->needs_server && (conf.server == NULL || conf.api_key == NULL)) {
        mc_err("%s: no server or no API key: give --server and "
               "--api-key-file, or set MDM_SERVER and MDM_API_KEY, or "
               "write them in the config file", cmd->name);
        rc = MC_USAGE;
        goto done;
    }

    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmd->run(cmd, &a);
    curl_global_cleanup();

done:
    /* every exit frees what it took, so valgrind shows real leaks only */
    free(a.pos);
    for (i = 0; i < a.nfree; i++) {
        free((char *) a.free_name[i]);
    }
    free(a.free_name);
    free(a.free_val);
    free(conf.server);
    free(conf.api_key);
    free(conf.mdmcert_url);
    free(conf.mdmcert_api_key);
    free(conf.pushcert_dir);
    free(conf.cacert);
    return rc;
}


/* -1: go on and run cmd; else the exit code (help, usage error) */
static int
mc_parse(int argc, char **argv, const mc_cmd_t **cmdp, mc_args_t *a,
    const char **globals)
{
    int             i, k, only_pos;
    size_t          n;
    const char     *arg, *eq, *val;
    char            name[128];
    const mc_cmd_t *cmd = NULL;
    const mc_opt_t *o;

    a->pos = calloc(argc + 1, sizeof(char *));
    a->free_name = calloc(argc + 1, sizeof(char *));
    a->free_val = calloc(argc + 1, sizeof(char *));
    if (a->pos == NULL || a->free_name == NULL || a->free_val == NULL) {
        mc_err("out of memory");
        return MC_SERVER;
    }

    only_pos = 0;
    for (i = 1; i < argc; i++) {
        arg = argv[i];

        if (!only_pos && strcmp(arg, "--") == 0) {
            only_pos = 1;
            continue;
        }

        if (only_pos || arg[0] != '-' || arg[1] == '\0') {
            if (cmd == NULL) {
                cmd = mc_find_cmd(argc, argv, &i);
                if (cmd == NULL) {
                    if (strcmp(argv[i], "help") == 0) {
                        mc_help(stdout, i + 1 < argc ? argv[i + 1] : NULL);
                        return MC_OK;
                    }
                    if (mc_is_group(argv[i])) {
                        mc_err("%s needs a subcommand:", argv[i]);
                        mc_help(stderr, argv[i]);
                    } else {
                        mc_err("unknown command \"%s\" (mdmctl --help "
                               "lists them)", argv[i]);
                    }
                    return MC_USAGE;
                }
                continue;
            }
            a->pos[a->npos++] = argv[i];
            continue;
        }

        if (strcmp(arg, "-h") == 0) {
            arg = "--help";
        }
        if (arg[1] != '-') {
            return mc_usage_error(cmd, "unknown option %s", arg);
        }

        arg += 2;
        eq = strchr(arg, '=');
        n = eq ? (size_t) (eq - arg) : strlen(arg);
        if (n == 0 || n >= sizeof(name)) {
            return mc_usage_error(cmd, "bad option %s", argv[i]);
        }
        memcpy(name, arg, n);
        name[n] = '\0';

        if (strcmp(name, "help") == 0) {
            if (cmd) {
                mc_help_cmd(stdout, cmd, 1);
            } else {
                mc_help(stdout, NULL);
            }
            return MC_OK;
        }

        /* a global option or one of the command's */
        o = NULL;
        for (k = 0; mc_global_opts[k].name; k++) {
            if (strcmp(mc_global_opts[k].name, name) == 0) {
                o = &mc_global_opts[k];
                break;
            }
        }
        if (o == NULL && cmd) {
            for (k = 0; cmd->opts[k].name; k++) {
                if (strcmp(cmd->opts[k].name, name) == 0) {
                    o = &cmd->opts[k];
                    break;
                }
            }
        }

        if (o == NULL) {
            if (cmd == NULL || !cmd->free_opts) {
                return mc_usage_error(cmd, "unknown option --%s", name);
            }
            /* --KEY VALUE for the command itself (send's template keys):
             * a key alone (before another option, or last) means true */
            if (eq) {
                val = eq + 1;
            } else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
                val = argv[++i];
            } else {
                val = NULL;
            }
            a->free_name[a->nfree] = mc_strdup(name);
            a->free_val[a->nfree] = val;
            a->nfree++;
            continue;
        }

        if (o->arg == NULL) {
            if (eq) {
                return mc_usage_error(cmd, "--%s takes no value", name);
            }
            val = "";
        } else if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            return mc_usage_error(cmd, "--%s needs a value (%s)", name,
                                  o->arg);
        }

        if (o >= mc_global_opts
            && o < mc_global_opts + sizeof(mc_global_opts) / sizeof(mc_opt_t))
        {
            globals[o - mc_global_opts] = val;
        } else {
            if (a->val[o - cmd->opts] && strcmp(name, "filter") == 0) {
                /* repeatable: kept in the free list */
                a->free_name[a->nfree] = mc_strdup("filter");
                a->free_val[a->nfree++] = val;
                continue;
            }
            a->val[o - cmd->opts] = val;
        }
    }

    if (cmd == NULL) {
        mc_err("no command (mdmctl --help lists them)");
        return MC_USAGE;
    }

    *cmdp = cmd;
    return -1;
}


/* a command by its name, one word or two ("pushcert upload"); advances *i
 * past a second word */
static const mc_cmd_t *
mc_find_cmd(int argc, char **argv, int *i)
{
    size_t          n;
    const mc_cmd_t *c;

    if (*i + 1 < argc) {
        for (c = mc_cmds; c->name; c++) {
            n = strlen(argv[*i]);
            if (strncmp(c->name, argv[*i], n) == 0 && c->name[n] == ' '
                && strcmp(c->name + n + 1, argv[*i + 1]) == 0)
            {
                (*i)++;
                return c;
            }
        }
    }

    for (c = mc_cmds; c->name; c++) {
        if (strcmp(c->name, argv[*i]) == 0) {
            return c;
        }
    }
    return NULL;
}


/* "pushcert", "blueprint", "events": the first word of two-word commands */
static int
mc_is_group(const char *name)
{
    size_t          n;
    const mc_cmd_t *c;

    n = strlen(name);
    for (c = mc_cmds; c->name; c++) {
        if (strncmp(c->name, name, n) == 0 && c->name[n] == ' ') {
            return 1;
        }
    }
    return 0;
}


const char *
mc_opt(const mc_cmd_t *cmd, mc_args_t *a, const char *name)
{
    int  k;

    for (k = 0; cmd->opts[k].name; k++) {
        if (strcmp(cmd->opts[k].name, name) == 0) {
            return a->val[k];
        }
    }
    return NULL;
}


static void
mc_help_opts(FILE *f, const mc_opt_t *o)
{
    char  buf[64];

    for (; o->name; o++) {
        snprintf(buf, sizeof(buf), "--%s%s%s", o->name, o->arg ? " " : "",
                 o->arg ? o->arg : "");
        fprintf(f, "    %-28s %s\n", buf, o->help);
    }
}


static void
mc_help_cmd(FILE *f, const mc_cmd_t *cmd, int full)
{
    fprintf(f, "%smdmctl %s%s%s [OPTIONS]\n", full ? "usage: " : "  ",
            cmd->name, cmd->synopsis[0] ? " " : "", cmd->synopsis);
    fprintf(f, "%s%s\n", full ? "\n" : "      ", cmd->help);
    if (cmd->opts[0].name) {
        if (full) {
            fprintf(f, "\noptions:\n");
        }
        mc_help_opts(f, cmd->opts);
    }
    if (full) {
        fprintf(f, "\nglobal options:\n");
        mc_help_opts(f, mc_global_opts);
        fprintf(f, "\nexit codes: 0 ok, 1 partial (some IDs refused), "
                "2 usage, 3 server error (no answer, 5xx), 4 refused "
                "(4xx)\n");
    }
}


/* every command (or those of one group, "pushcert") with its options */
static void
mc_help(FILE *f, const char *group)
{
    size_t          n;
    const mc_cmd_t *c;

    n = group ? strlen(group) : 0;
    fprintf(f, "usage: mdmctl [GLOBAL OPTIONS] COMMAND [ARGS] [OPTIONS]\n\n"
               "The command-line client of ngx_mdm's admin API.\n\n"
               "global options (anywhere on the line):\n");
    mc_help_opts(f, mc_global_opts);
    fprintf(f, "\ncommands:\n");
    for (c = mc_cmds; c->name; c++) {
        if (group && (strncmp(c->name, group, n) != 0
                      || (c->name[n] != ' ' && c->name[n] != '\0')))
        {
            continue;
        }
        mc_help_cmd(f, c, 0);
    }
    fprintf(f, "\nexit codes: 0 ok, 1 partial (some IDs refused), 2 usage, "
               "3 server error (no answer, 5xx, not the API), 4 refused "
               "(4xx)\n");
}


int
mc_usage_error(const mc_cmd_t *cmd, const char *fmt, ...)
{
    va_list  ap;

    fprintf(stderr, "mdmctl: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (cmd) {
        fprintf(stderr, " (mdmctl %s --help)\n", cmd->name);
    } else {
        fprintf(stderr, " (mdmctl --help)\n");
    }
    return MC_USAGE;
}


void
mc_err(const char *fmt, ...)
{
    va_list  ap;

    fprintf(stderr, "mdmctl: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
