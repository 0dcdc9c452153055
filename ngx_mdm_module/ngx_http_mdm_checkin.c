
/*
 * Copyright (C) ngx_mdm contributors
 *
 * The check-in protocol (mdm_checkin): Authenticate, TokenUpdate, CheckOut,
 * UserAuthenticate, SetBootstrapToken, GetBootstrapToken,
 * DeclarativeManagement, GetToken.  Each accepted message is one call of
 * lua/checkin.lua.
 */


#include "ngx_http_mdm_checkin.h"
#include "ngx_http_mdm_request.h"
#include "ngx_http_mdm_plist.h"
#include "ngx_http_mdm_redis.h"
#include "ngx_http_mdm_scripts.h"
#include "ngx_http_mdm_response.h"
#include "ngx_http_mdm_enrollment.h"
#include "ngx_http_mdm_ddm.h"


/* how a message key is stored in the enrollment hash */
#define NGX_HTTP_MDM_F_STRING  0
#define NGX_HTTP_MDM_F_HEX     1     /* data, hex: APNs wants hex tokens */
#define NGX_HTTP_MDM_F_BASE64  2     /* data, base64 */
#define NGX_HTTP_MDM_F_BOOL    3

/* which channel a message may come from */
#define NGX_HTTP_MDM_CH_ANY     0
#define NGX_HTTP_MDM_CH_DEVICE  1
#define NGX_HTTP_MDM_CH_USER    2

/* what answers the message */
#define NGX_HTTP_MDM_BY_REDIS         0
#define NGX_HTTP_MDM_BY_USERAUTH      1
#define NGX_HTTP_MDM_BY_UNSUPPORTED   2
#define NGX_HTTP_MDM_BY_DDM           3     /* ngx_http_mdm_ddm.c */


typedef struct {
    const char                *key;
    const char                *field;
    ngx_uint_t                 kind;
    ngx_uint_t                 required;
} ngx_http_mdm_field_t;


typedef struct {
    ngx_str_t                  name;
    ngx_uint_t                 channel;
    ngx_uint_t                 by;
    ngx_http_mdm_field_t      *fields;
} ngx_http_mdm_message_t;


static void ngx_http_mdm_checkin_body(ngx_http_request_t *r);
static ngx_http_mdm_message_t *ngx_http_mdm_checkin_message(ngx_str_t *name);
static const char *ngx_http_mdm_checkin_channel(ngx_http_mdm_ctx_t *ctx,
    ngx_http_mdm_message_t *m);
static ngx_int_t ngx_http_mdm_checkin_call(ngx_http_request_t *r,
    ngx_http_mdm_ctx_t *ctx, ngx_http_mdm_message_t *m);
static const char *ngx_http_mdm_checkin_fields(ngx_http_request_t *r,
    ngx_http_mdm_ctx_t *ctx, ngx_http_mdm_field_t *f, ngx_array_t *args);
static void ngx_http_mdm_checkin_done(ngx_http_request_t *r,
    redisReply *reply, const char *err);
static ngx_int_t ngx_http_mdm_checkin_answer(ngx_http_request_t *r,
    ngx_http_mdm_ctx_t *ctx, redisReply *value);
static ngx_int_t ngx_http_mdm_checkin_bootstrap(ngx_http_request_t *r,
    redisReply *value);
static ngx_int_t ngx_http_mdm_checkin_userauth(ngx_http_request_t *r,
    ngx_http_mdm_ctx_t *ctx);
static void ngx_http_mdm_checkin_takeover(ngx_http_request_t *r,
    ngx_http_mdm_ctx_t *ctx, redisReply *reply);
static ngx_int_t ngx_http_mdm_number_arg(ngx_http_request_t *r,
    ngx_array_t *args, ngx_int_t n);


static ngx_http_mdm_field_t  ngx_http_mdm_authenticate_fields[] = {
    { "Topic", "topic", NGX_HTTP_MDM_F_STRING, 1 },
    { "UDID", NULL, NGX_HTTP_MDM_F_STRING, 0 },
    { "EnrollmentID", NULL, NGX_HTTP_MDM_F_STRING, 0 },
    { "SerialNumber", "serial_number", NGX_HTTP_MDM_F_STRING, 0 },
    { "OSVersion", "os_version", NGX_HTTP_MDM_F_STRING, 0 },
    { "BuildVersion", "build_version", NGX_HTTP_MDM_F_STRING, 0 },
    { "ProductName", "product_name", NGX_HTTP_MDM_F_STRING, 0 },
    { "Model", "model", NGX_HTTP_MDM_F_STRING, 0 },
    { "ModelName", "model_name", NGX_HTTP_MDM_F_STRING, 0 },
    { "DeviceName", "device_name", NGX_HTTP_MDM_F_STRING, 0 },
    { "IMEI", "imei", NGX_HTTP_MDM_F_STRING, 0 },
    { "MEID", "meid", NGX_HTTP_MDM_F_STRING, 0 },
    { NULL, NULL, 0, 0 }
};


static ngx_http_mdm_field_t  ngx_http_mdm_token_update_fields[] = {
    { "Topic", "topic", NGX_HTTP_MDM_F_STRING, 1 },
    { "Token", "token", NGX_HTTP_MDM_F_HEX, 1 },
    { "PushMagic", "push_magic", NGX_HTTP_MDM_F_STRING, 1 },
    { "UnlockToken", "unlock_token", NGX_HTTP_MDM_F_BASE64, 0 },
    { "AwaitingConfiguration", "awaiting_configuration",
      NGX_HTTP_MDM_F_BOOL, 0 },
    { "UDID", NULL, NGX_HTTP_MDM_F_STRING, 0 },
    { "EnrollmentID", NULL, NGX_HTTP_MDM_F_STRING, 0 },
    { "UserID", "user_id", NGX_HTTP_MDM_F_STRING, 0 },
    { "UserShortName", "user_short_name", NGX_HTTP_MDM_F_STRING, 0 },
    { "UserLongName", "user_long_name", NGX_HTTP_MDM_F_STRING, 0 },
    { "EnrollmentUserID", "enrollment_user_id", NGX_HTTP_MDM_F_STRING, 0 },
    { "NotOnConsole", "not_on_console", NGX_HTTP_MDM_F_BOOL, 0 },
    { NULL, NULL, 0, 0 }
};


static ngx_http_mdm_field_t  ngx_http_mdm_check_out_fields[] = {
    { "Topic", "topic", NGX_HTTP_MDM_F_STRING, 1 },
    { NULL, NULL, 0, 0 }
};


static ngx_http_mdm_field_t  ngx_http_mdm_set_bootstrap_fields[] = {
    { "BootstrapToken", "bootstrap_token", NGX_HTTP_MDM_F_BASE64, 0 },
    { "AwaitingConfiguration", "awaiting_configuration",
      NGX_HTTP_MDM_F_BOOL, 0 },
    { NULL, NULL, 0, 0 }
};


static ngx_http_mdm_field_t  ngx_http_mdm_awaiting_fields[] = {
    { "AwaitingConfiguration", "awaiting_configuration",
      NGX_HTTP_MDM_F_BOOL, 0 },
    { NULL, NULL, 0, 0 }
};


static ngx_http_mdm_field_t  ngx_http_mdm_user_authenticate_fields[] = {
    { "UserID", "user_id", NGX_HTTP_MDM_F_STRING, 1 },
    { NULL, NULL, 0, 0 }
};


static ngx_http_mdm_field_t  ngx_http_mdm_declarative_fields[] = {
    { "Endpoint", NULL, NGX_HTTP_MDM_F_STRING, 1 },
    { NULL, NULL, 0, 0 }
};


static ngx_http_mdm_field_t  ngx_http_mdm_get_token_fields[] = {
    { "TokenServiceType", NULL, NGX_HTTP_MDM_F_STRING, 1 },
    { NULL, NULL, 0, 0 }
};


static ngx_http_mdm_message_t  ngx_http_mdm_messages[] = {
    { ngx_string("Authenticate"), NGX_HTTP_MDM_CH_DEVICE,
      NGX_HTTP_MDM_BY_REDIS, ngx_http_mdm_authenticate_fields },
    { ngx_string("TokenUpdate"), NGX_HTTP_MDM_CH_ANY,
      NGX_HTTP_MDM_BY_REDIS, ngx_http_mdm_token_update_fields },
    { ngx_string("CheckOut"), NGX_HTTP_MDM_CH_DEVICE,
      NGX_HTTP_MDM_BY_REDIS, ngx_http_mdm_check_out_fields },
    { ngx_string("SetBootstrapToken"), NGX_HTTP_MDM_CH_DEVICE,
      NGX_HTTP_MDM_BY_REDIS, ngx_http_mdm_set_bootstrap_fields },
    { ngx_string("GetBootstrapToken"), NGX_HTTP_MDM_CH_DEVICE,
      NGX_HTTP_MDM_BY_REDIS, ngx_http_mdm_awaiting_fields },
    { ngx_string("UserAuthenticate"), NGX_HTTP_MDM_CH_USER,
      NGX_HTTP_MDM_BY_USERAUTH, ngx_http_mdm_user_authenticate_fields },
    { ngx_string("DeclarativeManagement"), NGX_HTTP_MDM_CH_ANY,
      NGX_HTTP_MDM_BY_DDM, ngx_http_mdm_declarative_fields },
    { ngx_string("GetToken"), NGX_HTTP_MDM_CH_ANY,
      NGX_HTTP_MDM_BY_UNSUPPORTED, ngx_http_mdm_get_token_fields },
    { ngx_null_string, 0, 0, NULL }
};


ngx_int_t
ngx_http_mdm_checkin_handler(ngx_http_request_t *r)
{
    return ngx_http_mdm_device_read(r, ngx_http_mdm_checkin_body);
}


static void
ngx_http_mdm_checkin_body(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    rc = ngx_http_mdm_checkin_process(r);

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


ngx_int_t
ngx_http_mdm_checkin_process(ngx_http_request_t *r)
{
    ngx_int_t                 rc;
    const char               *reason;
    ngx_http_mdm_ctx_t       *ctx;
    ngx_http_mdm_message_t   *m;
    ngx_http_mdm_loc_conf_t  *mlcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_mdm_module);

    if (!ngx_http_mdm_is_checkin(r)) {
        return ngx_http_mdm_reject(r, ctx, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                   "Content-Type is not "
                                   NGX_HTTP_MDM_CHECKIN_TYPE);
    }

    rc = ngx_http_mdm_device_prepare(r, ctx, "MessageType");
    if (rc != NGX_OK) {
        return rc;
    }

    if (ctx->message_type.len == 0) {
        return ngx_http_mdm_reject(r, ctx, NGX_HTTP_BAD_REQUEST,
                                   "no MessageType string (or not a word)");
    }

    m = ngx_http_mdm_checkin_message(&ctx->message_type);
    if (m == NULL) {
        return ngx_http_mdm_reject(r, ctx, NGX_HTTP_BAD_REQUEST,
                                   "unknown MessageType");
    }

    reason = ngx_http_mdm_checkin_channel(ctx, m);
    if (reason) {
        return ngx_http_mdm_reject(r, ctx, NGX_HTTP_BAD_REQUEST, reason);
    }

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);

    switch (m->by) {

    case NGX_HTTP_MDM_BY_UNSUPPORTED:
        reason = ngx_http_mdm_checkin_fields(r, ctx, m->fields, NULL);
        if (reason) {
            return ngx_http_mdm_reject(r, ctx, NGX_HTTP_BAD_REQUEST, reason);
        }

        return ngx_http_mdm_reject(r, ctx, NGX_HTTP_NOT_IMPLEMENTED,
                                   "this message type is not served yet");

    case NGX_HTTP_MDM_BY_DDM:
        return ngx_http_mdm_ddm_checkin(r, ctx);

    case NGX_HTTP_MDM_BY_USERAUTH:
        if (mlcf->user_authenticate == NGX_HTTP_MDM_UA_DECLINE) {
            /* 410 is how a server declines to manage a user channel */
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "mdm: UserAuthenticate from enrollment \"%V\" "
                          "declined (mdm_user_authenticate decline)",
                          &ctx->enrollment_id);
            return 410;  /* Gone */
        }

        break;

    default: /* NGX_HTTP_MDM_BY_REDIS */
        break;
    }

    return ngx_http_mdm_checkin_call(r, ctx, m);
}


static ngx_http_mdm_message_t *
ngx_http_mdm_checkin_message(ngx_str_t *name)
{
    ngx_http_mdm_message_t  *m;

    for (m = ngx_http_mdm_messages; m->name.len; m++) {
        if (m->name.len == name->len
            && ngx_strncmp(m->name.data, name->data, name->len) == 0)
        {
            return m;
        }
    }

    return NULL;
}


static const char *
ngx_http_mdm_checkin_channel(ngx_http_mdm_ctx_t *ctx,
    ngx_http_mdm_message_t *m)
{
    if (m->channel == NGX_HTTP_MDM_CH_DEVICE && ctx->user_suffix.len) {
        return "this message type is for the device channel only";
    }

    if (m->channel == NGX_HTTP_MDM_CH_USER && ctx->user_suffix.len == 0) {
        return "this message type is for a user channel only";
    }

    return NULL;
}


/*
 * KEYS: the device keys, the device's user channels.  ARGV: MessageType,
 * the device argv, mdm_store_authenticate, mdm_reenroll, the retention
 * settings, then field/value pairs for the enrollment hash.
 */

static ngx_int_t
ngx_http_mdm_checkin_call(ngx_http_request_t *r, ngx_http_mdm_ctx_t *ctx,
    ngx_http_mdm_message_t *m)
{
    ngx_int_t                 rc;
    ngx_str_t                *users;
    const char               *reason;
    ngx_array_t              *args;
    ngx_http_mdm_loc_conf_t  *mlcf;

    /* as checkin.lua spells mdm_reenroll, in NGX_HTTP_MDM_REENROLL_ order */
    static ngx_str_t  reenroll[] = {
        ngx_string("any"), ngx_string("bound"), ngx_string("unenrolled")
    };

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);

    args = ngx_array_create(r->pool, 40, sizeof(ngx_str_t));
    if (args == NULL
        || ngx_http_mdm_device_keys(r, ctx, args) != NGX_OK
        || (users = ngx_array_push(args)) == NULL
        || ngx_http_mdm_enrollment_key(r->pool, MDM_KEY_USERS, ctx, 0, users)
           != NGX_OK
        || ngx_http_mdm_push_arg(args, ctx->message_type.data,
                                 ctx->message_type.len) != NGX_OK
        || ngx_http_mdm_device_argv(r, ctx, args) != NGX_OK
        || ngx_http_mdm_push_arg(args,
                                 (u_char *) (mlcf->store_authenticate
                                             ? "1" : "0"), 1)
           != NGX_OK
        || ngx_http_mdm_push_arg(args, reenroll[mlcf->reenroll].data,
                                 reenroll[mlcf->reenroll].len) != NGX_OK
        || ngx_http_mdm_retention_args(r, args) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    reason = ngx_http_mdm_checkin_fields(r, ctx, m->fields, args);
    if (reason) {
        return ngx_http_mdm_reject(r, ctx, NGX_HTTP_BAD_REQUEST, reason);
    }

    rc = ngx_http_mdm_redis_eval(r, NGX_HTTP_MDM_SCRIPT_CHECKIN,
                                 NGX_HTTP_MDM_DEVICE_NKEYS + 1, args,
                                 ngx_http_mdm_checkin_done);

    return ngx_http_mdm_device_wait(r, ctx, rc);
}


/* checks the message keys; with args, appends field/value pairs */

static const char *
ngx_http_mdm_checkin_fields(ngx_http_request_t *r, ngx_http_mdm_ctx_t *ctx,
    ngx_http_mdm_field_t *f, ngx_array_t *args)
{
    u_char      *p;
    ngx_int_t    rc;
    ngx_str_t    v, enc;
    ngx_uint_t   b;

    for ( /* void */ ; f->key; f++) {

        switch (f->kind) {

        case NGX_HTTP_MDM_F_STRING:
            rc = ngx_http_mdm_plist_string(ctx->plist, f->key, &v);
            break;

        case NGX_HTTP_MDM_F_BOOL:
            rc = ngx_http_mdm_plist_bool(ctx->plist, f->key, &b);
            if (rc == NGX_OK) {
                v.data = (u_char *) (b ? "1" : "0");
                v.len = 1;
            }
            break;

        default: /* data */
            rc = ngx_http_mdm_plist_data(r->pool, ctx->plist, f->key, &v);

            if (rc == NGX_OK && f->kind == NGX_HTTP_MDM_F_HEX) {
                p = ngx_pnalloc(r->pool, v.len * 2);
                if (p == NULL) {
                    return "out of memory";
                }
                enc.len = ngx_hex_dump(p, v.data, v.len) - p;
                enc.data = p;
                v = enc;

            } else if (rc == NGX_OK) {
                enc.data = ngx_pnalloc(r->pool,
                                       ngx_base64_encoded_length(v.len));
                if (enc.data == NULL) {
                    return "out of memory";
                }
                ngx_encode_base64(&enc, &v);
                v = enc;
            }
        }

        if (rc == NGX_ERROR) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "mdm: key \"%s\" has the wrong type", f->key);
            return "a key has the wrong type";
        }

        if (rc == NGX_DECLINED || v.len == 0) {
            if (f->required) {
                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "mdm: required key \"%s\" is missing", f->key);
                return "a required key is missing";
            }

            continue;
        }

        if (args == NULL || f->field == NULL) {
            continue;
        }

        if (ngx_http_mdm_push_arg(args, (u_char *) f->field,
                                      ngx_strlen(f->field)) != NGX_OK
            || ngx_http_mdm_push_arg(args, v.data, v.len) != NGX_OK)
        {
            return "out of memory";
        }
    }

    return NULL;
}


/* the script answers {"ok", value} or {"err", reason} */

static void
ngx_http_mdm_checkin_done(ngx_http_request_t *r, redisReply *reply,
    const char *err)
{
    ngx_int_t            rc;
    ngx_http_mdm_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_mdm_module);

    rc = ngx_http_mdm_refused(r, ctx, reply);

    if (rc == NGX_DECLINED) {
        rc = ngx_http_mdm_device_reply(r, ctx, reply, err);
    }

    if (rc == NGX_OK) {
        ngx_http_mdm_checkin_takeover(r, ctx, reply);
        rc = ngx_http_mdm_checkin_answer(r, ctx, reply->element[1]);
    }

    ngx_http_finalize_request(r, rc);
}


/* {"ok", "", "takeover", old hashes, new hash}: one warning, both hashes */

static void
ngx_http_mdm_checkin_takeover(ngx_http_request_t *r, ngx_http_mdm_ctx_t *ctx,
    redisReply *reply)
{
    redisReply  *what, *old, *new;

    if (reply->elements < 5) {
        return;
    }

    what = reply->element[2];
    old = reply->element[3];
    new = reply->element[4];

    if (what->type != REDIS_REPLY_STRING
        || what->len != sizeof("takeover") - 1
        || ngx_strncmp(what->str, "takeover", what->len) != 0
        || old->type != REDIS_REPLY_STRING
        || new->type != REDIS_REPLY_STRING)
    {
        return;
    }

    /* the hashes are hex digits and commas: checkin.lua wrote them */
    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "mdm: enrollment \"%V\" taken over by certificate %*s "
                  "from unexpired certificate %*s",
                  &ctx->enrollment_id, (size_t) new->len, new->str,
                  (size_t) old->len, old->str);
}


ngx_int_t
ngx_http_mdm_refused(ngx_http_request_t *r, ngx_http_mdm_ctx_t *ctx,
    redisReply *reply)
{
    u_char      buf[512];
    redisReply  *status, *why;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements < 2
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[1]->type != REDIS_REPLY_STRING)
    {
        return NGX_DECLINED;
    }

    status = reply->element[0];
    why = reply->element[1];

    if (status->len != 3 || ngx_strncmp(status->str, "err", 3) != 0) {
        return NGX_DECLINED;
    }

    if (why->len == sizeof("blocked") - 1
        && ngx_strncmp(why->str, "blocked", why->len) == 0)
    {
        return ngx_http_mdm_reject(r, ctx, NGX_HTTP_FORBIDDEN,
                                   "the device is blocked (mdm:block)");
    }

    if (why->len == sizeof("forbidden") - 1
        && ngx_strncmp(why->str, "forbidden", why->len) == 0
        && reply->elements > 2
        && reply->element[2]->type == REDIS_REPLY_STRING)
    {
        why = reply->element[2];
        ngx_snprintf(buf, sizeof(buf), "%*s%Z",
                     ngx_min((size_t) why->len, sizeof(buf) - 1), why->str);
        return ngx_http_mdm_reject(r, ctx, NGX_HTTP_FORBIDDEN, (char *) buf);
    }

    return NGX_DECLINED;
}


ngx_int_t
ngx_http_mdm_retention_args(ngx_http_request_t *r, ngx_array_t *args)
{
    ngx_http_mdm_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mdm_module);

    if (ngx_http_mdm_number_arg(r, args, mlcf->events_max) != NGX_OK
        || ngx_http_mdm_number_arg(r, args, (ngx_int_t) mlcf->result_ttl)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_mdm_number_arg(ngx_http_request_t *r, ngx_array_t *args,
    ngx_int_t n)
{
    u_char  *p, *last;

    p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    last = ngx_sprintf(p, "%i", n);

    return ngx_http_mdm_push_arg(args, p, last - p);
}


static ngx_int_t
ngx_http_mdm_checkin_answer(ngx_http_request_t *r, ngx_http_mdm_ctx_t *ctx,
    redisReply *value)
{
    ngx_str_t  *t = &ctx->message_type;

    if (t->len == sizeof("GetBootstrapToken") - 1
        && ngx_strncmp(t->data, "GetBootstrapToken", t->len) == 0)
    {
        return ngx_http_mdm_checkin_bootstrap(r, value);
    }

    if (t->len == sizeof("UserAuthenticate") - 1
        && ngx_strncmp(t->data, "UserAuthenticate", t->len) == 0)
    {
        return ngx_http_mdm_checkin_userauth(r, ctx);
    }

    return ngx_http_mdm_send(r, NGX_HTTP_OK, NULL, NULL);
}


/* {BootstrapToken: <data>}, or an empty 200 when none is escrowed */

static ngx_int_t
ngx_http_mdm_checkin_bootstrap(ngx_http_request_t *r, redisReply *value)
{
    plist_t    dict;
    ngx_int_t  rc;
    ngx_str_t  b64, token;

    if (value->type != REDIS_REPLY_STRING || value->len == 0) {
        return ngx_http_mdm_send(r, NGX_HTTP_OK, NULL, NULL);
    }

    b64.data = (u_char *) value->str;
    b64.len = value->len;

    token.data = ngx_pnalloc(r->pool, ngx_base64_decoded_length(b64.len));
    if (token.data == NULL || ngx_decode_base64(&token, &b64) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    dict = plist_new_dict();
    plist_dict_set_item(dict, "BootstrapToken",
                        plist_new_data((char *) token.data, token.len));

    rc = ngx_http_mdm_send_plist(r, dict);

    plist_free(dict);

    return rc;
}


/*
 * mdm_user_authenticate allow: a zero-length DigestChallenge says no
 * password is needed; the device's second request is then answered empty.
 */

static ngx_int_t
ngx_http_mdm_checkin_userauth(ngx_http_request_t *r, ngx_http_mdm_ctx_t *ctx)
{
    plist_t    dict;
    ngx_int_t  rc;
    ngx_str_t  v;

    if (ngx_http_mdm_plist_string(ctx->plist, "DigestResponse", &v)
        != NGX_DECLINED)
    {
        return ngx_http_mdm_send(r, NGX_HTTP_OK, NULL, NULL);
    }

    dict = plist_new_dict();
    plist_dict_set_item(dict, "DigestChallenge", plist_new_string(""));

    rc = ngx_http_mdm_send_plist(r, dict);

    plist_free(dict);

    return rc;
}
