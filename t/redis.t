# Redis inside nginx: down, hung, flushed scripts, clients that hang up.
# Only the first block (and the restart test) has a --- mdm_redis (a new
# nginx): the blocks in between run against the same nginx, so recovery
# happens without a restart.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use Digest::SHA qw(sha1_hex);

no_shuffle();

mdm_defaults(more_headers => "Content-Type: $t::MDM::CheckinType");

our $UDID = 'REDIS-TEST-0001';
our ($RedisPid, $Tally, $Queries);

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

# The block sections of this file (each block is one check-in):
#   --- mdm_redis: ADDRESS [OPTIONS]   nginx is started anew with
#       `mdm_redis ADDRESS [OPTIONS];` (after the block's own --- http_config
#       lines, if any) and the check-in location
#   --- checkin: Authenticate | TokenUpdate   the request: that message of
#       the device $UDID, signed by device certificate "dev"
our $CheckinConf = <<'CONF';
location = /mdm/checkin {
    mdm_checkin;
    mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
}
CONF

add_block_preprocessor(sub {
    my ($block) = @_;
    if (my $redis = $block->can('mdm_redis') && $block->mdm_redis) {
        $redis =~ s/\s+\z//;
        my $http = $block->can('http_config') && $block->http_config;
        $block->set_value(http_config => ($http // '') . "mdm_redis $redis;\n");
        $block->set_value(config => $CheckinConf);
    }
    if (my $message = $block->can('checkin') && $block->checkin) {
        $message =~ s/\s+\z//;
        $block->set_value(request => checkin_request("nanomdm/mdm/testdata/$message.2.plist",
                                                     UDID => $UDID));
        $block->set_value(signed_by => 'dev');
    }
});

# Fake servers on loopback, forked from this process: a RESP server that
# answers INFO as a Redis of a given version and every other command with a
# given error, and a DNS server that answers every A query with 127.0.0.1.
# Each writes one line per connection (query) to a file, to count them.
use IO::Socket::INET;
use IO::Select;
use POSIX ();

our $FakeDir = t::MDM::pki_dir();
$ENV{TEST_NGINX_FAKE_REDIS_PORT} = t::MDM::_pick_port();
$ENV{TEST_NGINX_DNS_PORT} = t::MDM::_pick_port();
our ($FakePid, $DnsPid, $RealPid);

sub lines_of { open my $fh, '<', $_[0] or return 0; my @l = <$fh>; scalar @l }

sub _child (&) {
    my ($code) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) { $code->(); POSIX::_exit(0) }
    return $pid;
}

sub _wait_file { my $d = time + 5; pause(0.02) until -e $_[0] || time > $d }

sub fake_redis {
    my (%o) = @_;
    stop_fake();
    my $log = "$FakeDir/fake-redis.conns";
    unlink $log, "$log.ready";
    my $info = "# Server\r\nredis_version:$o{version}\r\n\r\n# Memory\r\n"
             . "maxmemory_policy:noeviction\r\n\r\n# Persistence\r\nloading:"
             . ($o{loading} // 0) . "\r\n"
             . "\r\n# Replication\r\nrole:master\r\n";
    $FakePid = _child {
        my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', Listen => 16,
                    LocalPort => $ENV{TEST_NGINX_FAKE_REDIS_PORT}, ReuseAddr => 1)
            or POSIX::_exit(1);
        open my $r, '>', "$log.ready"; close $r;
        my $sel = IO::Select->new($l);
        my %in;
        while (1) {
            for my $s ($sel->can_read) {
                if ($s == $l) {
                    my $c = $l->accept or next;
                    $sel->add($c);
                    open my $fh, '>>', $log; print $fh "conn\n"; close $fh;
                    next;
                }
                my $n = sysread($s, $in{$s}, 65536, length($in{$s} // ''));
                if (!$n) { $sel->remove($s); delete $in{$s}; close $s; next }
                # one reply per complete RESP array
                while ($in{$s} =~ /\A\*(\d+)\r\n/) {
                    my ($argc, $pos, @argv) = ($1, length($&));
                    my $ok = 1;
                    for (1 .. $argc) {
                        if (substr($in{$s}, $pos) =~ /\A\$(\d+)\r\n/
                            && length($in{$s}) >= $pos + length($&) + $1 + 2) {
                            push @argv, substr($in{$s}, $pos + length($&), $1);
                            $pos += length($&) + $1 + 2;
                        } else { $ok = 0; last }
                    }
                    last unless $ok;
                    substr($in{$s}, 0, $pos) = '';
                    syswrite $s, uc($argv[0]) eq 'INFO'
                        ? '$' . length($info) . "\r\n$info\r\n"
                        : "-$o{error}\r\n";
                }
            }
        }
    };
    _wait_file("$log.ready");
}

sub fake_conns { lines_of("$FakeDir/fake-redis.conns") }

sub stop_fake {
    for my $p (grep { $_ } $FakePid, $RealPid) { kill 'KILL', $p; waitpid($p, 0) }
    undef $FakePid; undef $RealPid;
}

# a real redis-server where the fake one was
sub real_on_fake_port {
    stop_fake();
    $RealPid = t::MDM::_spawn([ 'redis-server', '--port', $ENV{TEST_NGINX_FAKE_REDIS_PORT},
                                '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
                                '--dir', $FakeDir ],
                              "$FakeDir/real.out", "$FakeDir/real.err", 1);
    my $d = time + 5;
    until (IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                 PeerPort => $ENV{TEST_NGINX_FAKE_REDIS_PORT})) {
        die "redis-server on the fake port did not start" if time > $d;
        pause(0.05);
    }
}

sub fake_dns {
    my $log = "$FakeDir/dns.queries";
    unlink $log, "$log.ready";
    $DnsPid = _child {
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', Proto => 'udp',
                    LocalPort => $ENV{TEST_NGINX_DNS_PORT}) or POSIX::_exit(1);
        open my $r, '>', "$log.ready"; close $r;
        while (1) {
            my $from = $s->recv(my $q, 512) // next;
            next if length $q < 17;
            my ($id) = unpack 'n', $q;
            my $end = 12;
            $end += 1 + ord(substr($q, $end, 1)) while ord(substr($q, $end, 1));
            my $question = substr($q, 12, $end + 5 - 12);
            my $qtype = unpack 'n', substr($q, $end + 1, 2);
            my $an = $qtype == 1
                ? pack('nnnNn', 0xc00c, 1, 1, 1, 4) . pack('C4', 127, 0, 0, 1) : '';
            $s->send(pack('nnnnnn', $id, 0x8180, 1, $an ? 1 : 0, 0, 0)
                     . $question . $an, 0, $from);
            open my $fh, '>>', $log; print $fh "query $qtype\n"; close $fh;
        }
    };
    _wait_file("$log.ready");
}

sub dns_queries { lines_of("$FakeDir/dns.queries") }

END { local $?; stop_fake(); kill 'KILL', $DnsPid if $DnsPid }

run_tests();

__DATA__

=== TEST 1: enroll a device with Redis up
--- mdm_redis: 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=500ms
--- checkin: Authenticate
--- error_code: 200
--- no_error_log
[error]



=== TEST 2: Redis stopped: 503 at once, one line for the outage, one per request
--- redis_setup eval
sub { redis_stop(); ::pause(0.1) }
--- checkin: TokenUpdate
--- error_code: 503
--- error_log eval
[qr/mdm: redis at "127\.0\.0\.1" unavailable: .*, reconnecting/,
 qr/TokenUpdate from enrollment "REDIS-TEST-0001" answered 503: redis (is not connected|connection lost)/]



=== TEST 3: still down: still a fast 503, and no new outage line
--- redis_setup eval
sub { redis_stop() }
--- checkin: TokenUpdate
--- error_code: 503
--- error_log
answered 503: redis is not connected
--- no_error_log
unavailable:



=== TEST 4: Redis back (empty): the same nginx reconnects by itself
--- redis_setup eval
sub { ::pause(1.5) }
--- checkin: Authenticate
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
--- checkin: TokenUpdate
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
--- checkin: TokenUpdate
--- error_code: 200
--- redis_check eval
[ [ "HGET mdm:enr:{$::UDID} enabled", "1" ], [ "HGET mdm:enr:{$::UDID} token_update_tally", qr/^[12]$/ ] ]
--- no_error_log
[error]



=== TEST 7: scripts flushed (or a fresh Redis): NOSCRIPT falls back to EVAL once
--- redis_setup
SCRIPT FLUSH
--- checkin: TokenUpdate
--- error_code: 200
--- redis_check eval
[ [ "SCRIPT EXISTS $::CheckinSha", [1] ], [ "HGET mdm:enr:{$::UDID} token_update_tally", qr/^[23]$/ ] ]
--- no_error_log
[error]



=== TEST 8: a device that hangs up while its call is in flight is finalized (499); the late reply is dropped
--- redis_setup eval
sub { $::Tally = redis("HGET", "mdm:enr:{$::UDID}", "token_update_tally");
      $::RedisPid = ::redis_pid(); kill 'STOP', $::RedisPid }
--- checkin: TokenUpdate
--- timeout: 0.2
--- abort
--- ignore_response
--- wait: 0.1
--- error_log
client prematurely closed connection



=== TEST 9: the late reply arrived after the request was gone: nginx carries on
--- redis_setup eval
sub { kill 'CONT', $::RedisPid; ::pause(0.2) }
--- checkin: TokenUpdate
--- error_code: 200
--- redis_check eval
[ [ "HGET mdm:enr:{$::UDID} token_update_tally", sub { $_[0] == $::Tally + 2 } ] ]
--- no_error_log
[error]
[alert]



=== TEST 10: Redis down when nginx starts: 503 until it comes up
--- mdm_redis: 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=500ms
--- redis_setup eval
sub { redis_stop() }
--- checkin: Authenticate
--- error_code: 503
--- error_log
unavailable



=== TEST 11: ... and serves once it is
--- redis_setup eval
sub { ::pause(1.5) }
--- checkin: Authenticate
--- error_code: 200
--- no_error_log
[error]



=== TEST 12: failover: Redis up
--- mdm_redis: 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=500ms
--- redis_setup
FLUSHALL
--- checkin: Authenticate
--- error_code: 200
--- no_error_log
[error]



=== TEST 13: the server turned read-only replica (READONLY): 503, never 500; the connection is dropped and the new one is refused by role
--- redis_setup
REPLICAOF 127.0.0.1 1
--- checkin: TokenUpdate
--- error_code: 503
--- wait: 0.7
--- error_log eval
[ qr/TokenUpdate from enrollment "REDIS-TEST-0001" answered 503: redis is read-only \(READONLY\)/,
  qr/mdm: redis at "127\.0\.0\.1" answered "READONLY You can't write against a read only replica\.[^"]*": dropping the connection, reconnecting/,
  qr/mdm: redis at "127\.0\.0\.1" cannot serve: it is a read-only replica; answering 503 and reconnecting/ ]
--- no_error_log
answered 500



=== TEST 14: still a replica: still a fast 503
--- checkin: TokenUpdate
--- error_code: 503
--- no_error_log
answered 500



=== TEST 15: a primary again: the same nginx serves again
--- redis_setup eval
sub { redis("REPLICAOF", "NO", "ONE"); ::pause(2) }
--- checkin: TokenUpdate
--- error_code: 200
--- redis_check eval
[ [ "HGET mdm:enr:{$::UDID} enabled", "1" ] ]
--- no_error_log
[error]



=== TEST 16: a Redis older than 6.2 (INFO says 5.0.7): 503, one error line for it however often nginx retries
--- mdm_redis: 127.0.0.1:$TEST_NGINX_FAKE_REDIS_PORT timeout=500ms
--- redis_setup eval
sub { ::fake_redis(version => "5.0.7", error => "ERR unknown command") }
--- checkin: TokenUpdate
--- error_code: 503
--- wait: 1
--- grep_error_log eval
qr/cannot serve: .*reconnecting/
--- grep_error_log_out
cannot serve: its version is 5.0.7; ngx_mdm needs Redis 6.2 or later; answering 503 and reconnecting
--- after_each eval
[ sub { ::pause(1); Test::More::cmp_ok(::fake_conns(), ">=", 3, "nginx kept retrying the old server") } ]
--- no_error_log
answered 500



=== TEST 17: a server answering LOADING: 503, the connection dropped and made anew
--- mdm_redis: 127.0.0.1:$TEST_NGINX_FAKE_REDIS_PORT timeout=500ms
--- redis_setup eval
sub { ::fake_redis(version => "7.0.15", error => "LOADING Redis is loading the dataset in memory") }
--- checkin: TokenUpdate
--- error_code: 503
--- wait: 0.7
--- error_log eval
[ qr/TokenUpdate from enrollment "REDIS-TEST-0001" answered 503: redis is loading its dataset \(LOADING\)/,
  qr/answered "LOADING Redis is loading the dataset in memory": dropping the connection, reconnecting/ ]
--- after_each eval
[ sub { ::pause(0.5); Test::More::cmp_ok(::fake_conns(), ">=", 2, "nginx reconnected after LOADING");
        ::real_on_fake_port() } ]
--- no_error_log
answered 500



=== TEST 18: ... and serves once the server has loaded
--- redis_setup eval
sub { ::pause(2) }
--- checkin: Authenticate
--- error_code: 200
--- no_error_log
[error]



=== TEST 19: maxmemory-policy with eviction: one warning per connection
--- mdm_redis: 127.0.0.1:$TEST_NGINX_REDIS_PORT
--- redis_setup
CONFIG SET maxmemory-policy allkeys-lru
--- checkin: Authenticate
--- error_code: 200
--- after_each eval
[ sub { redis("CONFIG", "SET", "maxmemory-policy", "noeviction") } ]
--- error_log
mdm: redis at "127.0.0.1" has maxmemory-policy allkeys-lru: it may evict enrollments and queued commands when full; set "maxmemory-policy noeviction"



=== TEST 20: a host name without a resolver: resolved once by the master
--- mdm_redis: localhost:$TEST_NGINX_REDIS_PORT
--- checkin: Authenticate
--- error_code: 200
--- no_error_log
[error]
[warn]



=== TEST 21: a host name with a resolver: resolved with nginx's resolver when connecting
--- http_config
resolver 127.0.0.1:$TEST_NGINX_DNS_PORT ipv6=off valid=1s;
--- mdm_redis: redis.mdm.test:$TEST_NGINX_REDIS_PORT timeout=500ms
--- redis_setup eval
sub { ::fake_dns() }
--- checkin: Authenticate
--- error_code: 200
--- after_each eval
[ sub { Test::More::cmp_ok(::dns_queries(), ">=", 1, "nginx asked the resolver") } ]
--- no_error_log
[error]



=== TEST 22: ... and again at each reconnect
--- redis_setup eval
sub { ::pause(1.5); $::Queries = ::dns_queries(); redis_stop(); ::pause(0.3);
      redis_start(); ::pause(1.5) }
--- checkin: Authenticate
--- error_code: 200
--- after_each eval
[ sub { Test::More::cmp_ok(::dns_queries(), ">", $::Queries, "resolved again after the reconnect") } ]
--- error_log
mdm: redis at "redis.mdm.test" is back



=== TEST 23: a full Redis under noeviction (OOM): 503 with the reason, never 500; the connection is kept
--- mdm_redis: 127.0.0.1:$TEST_NGINX_REDIS_PORT
--- redis_setup
CONFIG SET maxmemory 1
--- checkin: TokenUpdate
--- error_code: 503
--- after_each eval
[ sub { redis("CONFIG", "SET", "maxmemory", "0") } ]
--- error_log
TokenUpdate from enrollment "REDIS-TEST-0001" answered 503: redis is out of memory (OOM; maxmemory-policy noeviction)
--- no_error_log
answered 500
dropping the connection



=== TEST 24: memory back: served on the same connection
--- checkin: TokenUpdate
--- error_code: 200
--- no_error_log
[error]



=== TEST 25: INFO denied by an ACL: a warning, and served all the same
--- mdm_redis: 127.0.0.1:$TEST_NGINX_REDIS_PORT
--- redis_setup
ACL SETUSER default -info
--- checkin: TokenUpdate
--- error_code: 200
--- after_each eval
[ sub { redis("ACL", "SETUSER", "default", "+info") } ]
--- error_log eval
qr/\[warn\] .*mdm: redis INFO failed: NOPERM.*; the server's version and maxmemory-policy are not checked/
--- no_error_log
[error]



=== TEST 26: a server whose INFO says loading:1: 503 and one line until it has loaded
--- mdm_redis: 127.0.0.1:$TEST_NGINX_FAKE_REDIS_PORT timeout=500ms
--- redis_setup eval
sub { ::fake_redis(version => "7.0.15", loading => 1, error => "LOADING Redis is loading the dataset in memory") }
--- checkin: TokenUpdate
--- error_code: 503
--- wait: 0.5
--- grep_error_log eval
qr/cannot serve: .*reconnecting/
--- grep_error_log_out
cannot serve: it is loading its dataset; answering 503 and reconnecting
--- no_error_log
answered 500



=== TEST 27: a replica cut off from its primary (MASTERDOWN): 503, the connection dropped and made anew
--- mdm_redis: 127.0.0.1:$TEST_NGINX_FAKE_REDIS_PORT timeout=500ms
--- redis_setup eval
sub { ::fake_redis(version => "7.0.15", error => "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.") }
--- checkin: TokenUpdate
--- error_code: 503
--- after_each eval
[ sub { ::pause(0.5); Test::More::cmp_ok(::fake_conns(), ">=", 2, "nginx reconnected after MASTERDOWN") } ]
--- error_log eval
[ qr/answered 503: redis lost its primary \(MASTERDOWN\)/,
  qr/answered "MASTERDOWN Link with MASTER is down[^"]*": dropping the connection, reconnecting/ ]
--- no_error_log
answered 500
