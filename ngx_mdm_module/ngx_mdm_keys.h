/*
 * Copyright (C) ngx_mdm contributors
 *
 * The Redis key names shared by ngx_http_mdm_module, its Lua scripts and
 * mdm-worker: one source.  Plain "#define MDM_KEY_NAME "value"" lines
 * only, no includes: lua/gen.sh turns each into a Lua local of the same
 * name in front of every script.
 *
 * Keys of one enrollment ("DID" or "DID:USER") put the device id in a hash
 * tag, PREFIX{DID}:USER, so they share a cluster slot (mdm_key() in
 * lua/common.lua).
 */

#ifndef NGX_MDM_KEYS_H
#define NGX_MDM_KEYS_H

/* per enrollment: prefix{DID}[:USER] */
#define MDM_KEY_ENR             "mdm:enr:"           /* hash */
#define MDM_KEY_QUEUE           "mdm:q:"             /* list of UUIDs */
#define MDM_KEY_QUEUE_PRIO      "mdm:qp:"            /* list of UUIDs */
#define MDM_KEY_RESULT          "mdm:r:"             /* ...:UUID string */
#define MDM_KEY_CERTS_OLD       "mdm:certs:"         /* pre-migration */
#define MDM_KEY_AUTH            "mdm:auth:"
#define MDM_KEY_BLOCK           "mdm:block:"         /* string, ms */
#define MDM_KEY_USERS           "mdm:users:"

/* per certificate, per command, per topic */
#define MDM_KEY_CERTIDX         "mdm:certidx:"       /* + SHA-256 */
#define MDM_KEY_CMD             "mdm:cmd:"           /* + UUID */
#define MDM_KEY_PUSHCERT        "mdm:pushcert:"      /* + topic, hash */
#define MDM_KEY_TOPICS          "mdm:topics"         /* set */

/* pushes: ids waiting in PUSH are members of PUSH_PENDING (contract C1) */
#define MDM_KEY_PUSH            "mdm:push"           /* list of ids */
#define MDM_KEY_PUSH_PENDING    "mdm:push:pending"   /* set of ids */
#define MDM_KEY_PUSH_PROC       "mdm:push:proc:"     /* + worker id, list */
#define MDM_KEY_PUSH_PROCS      "mdm:push:procs"     /* set of PUSH_PROC.. */
#define MDM_KEY_WORKER          "mdm:worker:"        /* + worker id, TTL */

/* events and webhooks */
#define MDM_KEY_EVENTS          "mdm:events"         /* stream */
#define MDM_KEY_WEBHOOKS_DEAD   "mdm:webhooks:dead"  /* stream */
#define MDM_KEY_WEBHOOKS_WANT   "mdm:webhooks:want"  /* string, TTL */
#define MDM_KEY_WEBHOOKS_LEADER "mdm:webhooks:leader" /* worker id, TTL */

/* enrollment: one-time SCEP challenges (contract E1), ADE MachineInfo */
#define MDM_KEY_SCEP_CHALLENGE  "mdm:scep:challenge:" /* + value, TTL */
#define MDM_KEY_MACHINEINFO     "mdm:machineinfo:"   /* + serial, hash */

/* the SCEP CA's issued certificates (contract E2) */
#define MDM_KEY_SCEP_SERIAL     "mdm:scep:serial"    /* INCR counter */
#define MDM_KEY_SCEP_CERT       "mdm:scep:cert:"     /* + serial, hash */
#define MDM_KEY_SCEP_CERTS      "mdm:scep:certs"     /* zset by notAfter */
/* renewal: challenge -> device, serial -> device, issued cert -> device */
#define MDM_KEY_RENEW_CHALLENGE "mdm:renew:challenge:" /* + value, TTL */
#define MDM_KEY_RENEW_SERIAL    "mdm:renew:serial:"  /* + serial, TTL */
#define MDM_KEY_RENEWED         "mdm:renewed:"       /* + sha256, EXAT */

/* counters */
#define MDM_KEY_STATS_APNS      "mdm:stats:apns"     /* hash */
#define MDM_KEY_STATS_MODULE    "mdm:stats:module"   /* hash */

/* dep (worker side, contracts D1-D5): per name mdm:dep:NAME:... */
#define MDM_KEY_DEP             "mdm:dep:"           /* + NAME:... */
#define MDM_KEY_DEP_NAMES       "mdm:dep:names"      /* set */
#define MDM_KEY_DEP_SYNCNOW     "mdm:dep:syncnow"    /* set of names */
#define MDM_KEY_DEP_PROXY       "mdm:dep:proxy"      /* list of jobs */
#define MDM_KEY_DEP_PROXY_REPLY "mdm:dep:proxy:reply:" /* + id, TTL */
#define MDM_KEY_DEP_PROFILES    "mdm:dep:profiles"   /* hash */
#define MDM_KEY_DEP_LEADER      "mdm:dep:leader"     /* worker id, TTL */
/* cmds: blueprints (names [A-Za-z0-9._-], so no name is "mdm:bpx:...") */
#define MDM_KEY_BLUEPRINT       "mdm:bp:"            /* + name, hash */
#define MDM_KEY_BP_NAMES        "mdm:bpx:names"      /* set of names */
#define MDM_KEY_BP_ALL          "mdm:bpx:all"        /* string: name */
#define MDM_KEY_BP_DEP          "mdm:bpx:dep"        /* hash uuid -> name */
#define MDM_KEY_BP_SERIALS      "mdm:bpx:serials"    /* hash serial -> name */
#define MDM_KEY_BP_SEQ          "mdm:bpx:seq"        /* INCR counter */
#define MDM_KEY_INV_SEQ         "mdm:inv:seq"        /* INCR counter */
/* ddm: Declarative Device Management (retention: README, "DDM") */
#define MDM_KEY_DDM_DECL        "mdm:ddm:decl:"      /* + id, hash */
#define MDM_KEY_DDM_DECLS       "mdm:ddm:decls"      /* set of ids */
#define MDM_KEY_DDM_SET         "mdm:ddm:set:"       /* + set, set of ids */
#define MDM_KEY_DDM_DECLSETS    "mdm:ddm:declsets:"  /* + id, set of sets */
#define MDM_KEY_DDM_ENRSETS     "mdm:ddm:enrsets:"   /* + {DID}USER, sets */
#define MDM_KEY_DDM_SETENRS     "mdm:ddm:setenrs:"   /* + set, enrollments */
#define MDM_KEY_DDM_STATUS      "mdm:ddm:status:"    /* + {DID}USER, hash */
#define MDM_KEY_DDM_DSTATUS     "mdm:ddm:dstatus:"   /* + {DID}USER, hash */
#define MDM_KEY_DDM_ERRORS      "mdm:ddm:errors:"    /* + {DID}USER, list */
#define MDM_KEY_DDM_DIRTY       "mdm:ddm:dirty"      /* zset, ms */
#define MDM_KEY_DDM_SCAN        "mdm:ddm:scan"       /* hash set -> cursor */
#define MDM_KEY_DDM_ASSET       "mdm:ddm:asset:"     /* + name, hash */
#define MDM_KEY_DDM_ASSETS      "mdm:ddm:assets"     /* hash name -> size */
/* ops: per-worker counters (retention: stats_retention, README "Metrics") */
#define MDM_KEY_STATS_WORKER    "mdm:stats:worker:"  /* + worker id, hash */
#define MDM_KEY_STATS_WORKERS   "mdm:stats:workers"  /* zset id -> expiry ms */
/* vpp worker (contracts V1-V5; retention: README, "VPP: the worker") */
#define MDM_KEY_VPP             "mdm:vpp:"           /* + NAME:... */
#define MDM_KEY_VPP_NAMES       "mdm:vpp:names"      /* set */
#define MDM_KEY_VPP_SYNCNOW     "mdm:vpp:syncnow"    /* set of names */
#define MDM_KEY_VPP_JOBS        "mdm:vpp:jobs"       /* list of jobs */
#define MDM_KEY_VPP_RUNNING     "mdm:vpp:running"    /* hash id -> job */
#define MDM_KEY_VPP_REPLY       "mdm:vpp:reply:"     /* + id, TTL */
#define MDM_KEY_VPP_MDMINFO     "mdm:vpp:mdminfo"    /* hash {id, name} */
#define MDM_KEY_VPP_LEADER      "mdm:vpp:leader"     /* worker id, TTL */
#define MDM_KEY_VPP_INSTALL     "mdm:vpp:install:"   /* + IID[:dev], TTL */
#define MDM_KEY_VPP_NOTIF       "mdm:vpp:notif:"     /* + id, TTL 1 day */
/* vppa: the serial index of enrollments (README, "VPP") */
#define MDM_KEY_SERIALS         "mdm:serials"        /* hash serial -> did */

#endif /* NGX_MDM_KEYS_H */
