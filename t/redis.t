# Redis inside nginx: down, hung, flushed scripts, clients that hang up.
# Only the first block (and the restart test) has a --- config: the blocks in
# between run against the same nginx, so recovery happens without a restart.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use Digest::SHA qw(sha1_hex);

no_shuffle();

mdm_defaults(more_headers => "Content-Type: $t::MDM::CheckinType");

our $UDID = 'REDIS-TEST-0001';
our ($RedisPid, $Tally);

# EVALSHA's key: the SHA-1 of the script the module carries (gen.sh: the
# key names of ngx_mdm_keys.h as Lua locals, common.lua, the script)
our $CheckinSha = do {
    open my $kh, '<', "ngx_mdm_module/ngx_mdm_keys.h" or die $!;
    my $keys = join '', map { /^#define (MDM_KEY_[A-Z0-9_]*) *"([^"]*)"/ ? "local $1 = '$2'\n" : () } <$kh>;
    local $/;
    sha1_hex($keys, map { open my $fh, '<', "ngx_mdm_module/lua/$_.lua" or die $!; <$fh> }
             qw(common checkin));
};

sub redis_pid () {
    return (redis('INFO', 'server') =~ /process_id:(\d+)/)[0];
}

sub pause ($) { select(undef, undef, undef, $_[0]) }

our $Auth = 'checkin_request("nanomdm/mdm/testdata/Authenticate.2.plist", UDID => $::UDID)';
our $Update = 'checkin_request("nanomdm/mdm/testdata/TokenUpdate.2.plist", UDID => $::UDID)';

run_tests();

__DATA__

=== TEST 1: enroll a device with Redis up
--- http_config
mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=500ms;
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
}
--- request eval
eval $::Auth
--- signed_by: dev
--- error_code: 200
--- no_error_log
[error]



=== TEST 2: Redis stopped: 503 at once, one line for the outage, one per request
--- redis_setup eval
sub { redis_stop(); ::pause(0.1) }
--- request eval
eval $::Update
--- signed_by: dev
--- error_code: 503
--- error_log eval
[qr/mdm: redis at "127\.0\.0\.1" unavailable: .*, reconnecting/,
 qr/TokenUpdate from enrollment "REDIS-TEST-0001" answered 503: redis (is not connected|connection lost)/]



=== TEST 3: still down: still a fast 503, and no new outage line
--- redis_setup eval
sub { redis_stop() }
--- request eval
eval $::Update
--- signed_by: dev
--- error_code: 503
--- error_log
answered 503: redis is not connected
--- no_error_log
unavailable:



=== TEST 4: Redis back (empty): the same nginx reconnects by itself
--- redis_setup eval
sub { ::pause(1.5) }
--- request eval
eval $::Auth
--- signed_by: dev
--- error_code: 200
--- redis_check eval
[ [ "HGET mdm:enr:{$::UDID} enabled", "0" ] ]
--- error_log
mdm: redis at "127.0.0.1" is back
--- no_error_log
[error]



=== TEST 5: Redis hung (SIGSTOP): 503 after the configured timeout
--- redis_setup eval
sub { $::RedisPid = ::redis_pid(); kill 'STOP', $::RedisPid }
--- request eval
eval $::Update
--- signed_by: dev
--- error_code: 503
--- after_each eval
[ sub { kill 'CONT', $::RedisPid } ]
--- error_log eval
[qr/TokenUpdate from enrollment "REDIS-TEST-0001" answered 503: redis timed out/,
 qr/unavailable: a call timed out, reconnecting/]



=== TEST 6: and recovers when Redis answers again; nothing was lost
The timed-out call was already in Redis's socket buffer: it may or may not
have run when Redis resumed (at least once, as a device retry would be).
--- redis_setup eval
sub { ::pause(1) }
--- request eval
eval $::Update
--- signed_by: dev
--- error_code: 200
--- redis_check eval
[ [ "HGET mdm:enr:{$::UDID} enabled", "1" ], [ "HGET mdm:enr:{$::UDID} token_update_tally", qr/^[12]$/ ] ]
--- no_error_log
[error]



=== TEST 7: scripts flushed (or a fresh Redis): NOSCRIPT falls back to EVAL once
--- redis_setup
SCRIPT FLUSH
--- request eval
eval $::Update
--- signed_by: dev
--- error_code: 200
--- redis_check eval
[ [ "SCRIPT EXISTS $::CheckinSha", [1] ], [ "HGET mdm:enr:{$::UDID} token_update_tally", qr/^[23]$/ ] ]
--- no_error_log
[error]



=== TEST 8: a device that hangs up while its call is in flight is finalized (499); the late reply is dropped
--- redis_setup eval
sub { $::Tally = redis("HGET", "mdm:enr:{$::UDID}", "token_update_tally");
      $::RedisPid = ::redis_pid(); kill 'STOP', $::RedisPid }
--- request eval
eval $::Update
--- signed_by: dev
--- timeout: 0.2
--- abort
--- ignore_response
--- wait: 0.1
--- error_log
client prematurely closed connection



=== TEST 9: the late reply arrived after the request was gone: nginx carries on
--- redis_setup eval
sub { kill 'CONT', $::RedisPid; ::pause(0.2) }
--- request eval
eval $::Update
--- signed_by: dev
--- error_code: 200
--- redis_check eval
[ [ "HGET mdm:enr:{$::UDID} token_update_tally", sub { $_[0] == $::Tally + 2 } ] ]
--- no_error_log
[error]
[alert]



=== TEST 10: Redis down when nginx starts: 503 until it comes up
--- http_config
mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=500ms;
--- config
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
}
--- redis_setup eval
sub { redis_stop() }
--- request eval
eval $::Auth
--- signed_by: dev
--- error_code: 503
--- error_log
unavailable



=== TEST 11: ... and serves once it is
--- redis_setup eval
sub { ::pause(1.5) }
--- request eval
eval $::Auth
--- signed_by: dev
--- error_code: 200
--- no_error_log
[error]
