# Issue 9 #7: one heavy admin call must not fail device requests. A command
# enqueued to 100,000 enrollments (made directly in Redis, each with its
# report of the command stored, as after a fleet answered it) is read back
# through GET /v1/commands/UUID, page by page, while devices talk to a
# device location of the same nginx: every device answer is a 200. Before
# the listings were paged, the one Lua call over all targets held Redis past
# the module's Redis timeout, and every device request then in flight was
# answered 503.

use Test::Nginx::Socket 'no_plan';
use t::MDM;

use JSON::PP ();
use MIME::Base64 qw(encode_base64);
use POSIX ();
use Time::HiRes qw(time sleep);

no_shuffle();
master_on();

our $KEY = 'load-key';
our $AUTH = 'Authorization: Basic ' . encode_base64("nanomdm:$KEY", '');
our $N = 100_000;
our $UUID = 'LOAD-CMD-1';
our $DEVICES = 20;

mdm_defaults(
    http_config => 'mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;',
    config => qq{
        # an enqueue names 10,000 ids in its URL
        large_client_header_buffers 4 256k;
        location /v1/ { mdm_api; mdm_api_key $KEY; }
        location = /mdm/connect {
            mdm_connect;
            mdm_identity off;
            mdm_cert_auth off;
        }
    },
);

# One GET of a page: the target ids it holds and the next cursor. (A regex,
# not JSON::PP: decoding 40 MB in pure Perl would take most of the test.)
sub page {
    my ($cursor) = @_;
    my $path = "/v1/commands/$UUID?limit=1000" . ($cursor ne '' ? "&cursor=$cursor" : '');
    my $res = concurrent_requests(server_port(),
        [ http_request(GET => $path, undef, [ Authorization => substr($AUTH, 15) ]) ],
        timeout => 30)->[0];
    die "GET $path: " . ($res->{error} // $res->{status}) . "\n"
        unless ($res->{status} // 0) == 200;
    my ($next) = $res->{body} =~ /"cursor":"([^"]*)"/;
    die "GET $path: no cursor\n" unless defined $next;
    return ([ $res->{body} =~ /"(LOAD-\d{6})":\{/g ], $next);
}

# The whole walk in a child process; it writes "targets pages" to $out.
sub walk_in_child {
    my ($out) = @_;
    my $pid = fork // die "fork: $!";
    return $pid if $pid;
    my ($seen, $pages, $cursor) = (0, 0, '');
    my %ids;
    eval {
        do {
            my ($ids, $next) = page($cursor);
            $ids{$_} = 1 for @$ids;
            $cursor = $next;
            $pages++;
        } while ($cursor ne '' && $pages < 100_000);
        1;
    } or do { open my $fh, '>', $out; print {$fh} "error $@"; POSIX::_exit(1) };
    open my $fh, '>', $out or POSIX::_exit(1);
    print {$fh} scalar(keys %ids), " $pages\n";
    close $fh;
    POSIX::_exit(0);
}

# In a child: $n enqueues of one command each to the first 10,000
# enrollments (the most one call may name); writes their statuses to $out.
sub enqueue_in_child {
    my ($out, $n) = @_;
    my $pid = fork // die "fork: $!";
    return $pid if $pid;
    my $ids = CORE::join(',', map { sprintf 'LOAD-%06d', $_ } 1 .. 10_000);
    my @st;
    for my $i (1 .. $n) {
        my $body = qq{<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">\n<dict>\n}
                 . qq{<key>Command</key><dict><key>RequestType</key><string>ProfileList</string></dict>\n}
                 . qq{<key>CommandUUID</key><string>BULK-$i</string>\n</dict>\n</plist>};
        my $res = concurrent_requests(server_port(),
            [ http_request(PUT => "/v1/enqueue/$ids", $body,
                           [ Authorization => substr($AUTH, 15) ]) ], timeout => 30)->[0];
        push @st, $res->{status} // $res->{error};
    }
    open my $fh, '>', $out or POSIX::_exit(1);
    print {$fh} "@st\n";
    close $fh;
    POSIX::_exit(0);
}

sub idle {
    my ($udid) = @_;
    my $body = qq{<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">\n<dict>\n}
             . qq{\t<key>Status</key>\n\t<string>Idle</string>\n}
             . qq{\t<key>UDID</key>\n\t<string>$udid</string>\n</dict>\n</plist>};
    return http_request(PUT => '/mdm/connect', $body,
                        [ 'Content-Type' => 'application/x-apple-aspen-mdm' ]);
}

# Devices in rounds of $DEVICES concurrent Idle requests until the walk
# ends: [ number of answers, the ones that were not 200 ].
sub devices_while {
    my ($pid) = @_;
    my ($n, @bad) = (0);
    my $deadline = time + 120;
    while (time < $deadline) {
        my $res = concurrent_requests(server_port(),
            [ map { idle(sprintf "LOAD-DEV-%02d", $_) } 1 .. $DEVICES ], timeout => 30);
        $n += @$res;
        push @bad, map { $_->{error} // $_->{status} }
                   grep { ($_->{status} // 0) != 200 } @$res;
        last if waitpid($pid, POSIX::WNOHANG()) == $pid;
        sleep 0.01;
    }
    return ($n, \@bad);
}

{
    no strict 'refs';
    *{"Test::Base::Filter::$_"} = \&{"main::$_"} for qw(walk_in_child enqueue_in_child devices_while);
}

run_tests();

__DATA__

=== TEST 1: GET /v1/commands/UUID over 100,000 targets, paged, while devices connect: every device answer is 200, and the pages visit every target
--- timeout: 180
--- redis_setup eval
[ [ "FLUSHALL" ],
  [ "EVAL", q{
      -- a report as small as a device's Acknowledged of a short command
      local report = string.rep('<key>Status</key><string>Acknowledged</string>', 6)
      for i = 1, tonumber(ARGV[1]) do
          local id = string.format('LOAD-%06d', i)
          redis.call('HSET', 'mdm:enr:{' .. id .. '}', 'type', 'Device', 'enabled', '1')
          redis.call('SADD', 'mdm:cmd:' .. ARGV[2] .. ':targets', id)
          redis.call('HSET', 'mdm:r:{' .. id .. '}:' .. ARGV[2], 'status', 'Acknowledged',
                     'report', report, 'updated_at', '1700000000000',
                     'completed_at', '1700000000000')
      end
      redis.call('HSET', 'mdm:cmd:' .. ARGV[2], 'plist', 'x', 'request_type', 'ProfileList',
                 'created_at', '1700000000000', 'priority', '0')
      for i = 1, tonumber(ARGV[3]) do
          redis.call('HSET', string.format('mdm:enr:{LOAD-DEV-%02d}', i), 'type', 'Device',
                     'enabled', '1')
      end }, 0, $::N, $::UUID, $::DEVICES ] ]
--- request
GET /v1/enrollments/LOAD-000001
--- more_headers eval
$::AUTH
--- error_code: 200
--- after_each eval
sub {
    my $out = t::MDM::pki_dir() . "/walk.out";
    unlink $out;
    my $t0 = Time::HiRes::time();
    my $pid = walk_in_child($out);
    my ($n, $bad) = devices_while($pid);
    waitpid($pid, 0);
    my $took = Time::HiRes::time() - $t0;
    Test::More::cmp_ok($n, '>=', $::DEVICES, "devices were served during the walk ($n requests)");
    Test::More::is(scalar @$bad, 0, "every device answer was 200")
        or Test::More::diag("not 200: " . CORE::join(", ", (@$bad)[0 .. ($#$bad < 9 ? $#$bad : 9)]));
    open my $fh, '<', $out or die "$out: $!";
    my $got = <$fh>;
    CORE::chomp($got);
    Test::More::like($got, qr/^$::N (\d+)$/, "the pages visit all $::N targets");
    my ($pages) = $got =~ / (\d+)$/;
    Test::More::cmp_ok($pages // 0, '>=', 100, "in pages of at most 1,000 ($pages pages, ${\ sprintf '%.1f', $took} s)");
}
--- no_error_log
answered 503



=== TEST 2: five enqueues to 10,000 enrollments each (the most one call may name) while devices connect: every answer is 200, and each enrollment waits for one push
--- timeout: 180
--- redis_setup eval
[ [ "DEL", "mdm:push", "mdm:push:pending" ] ]
--- request
GET /v1/enrollments/LOAD-010000
--- more_headers eval
$::AUTH
--- error_code: 200
--- after_each eval
sub {
    my $out = t::MDM::pki_dir() . "/enqueue.out";
    unlink $out;
    my $pid = enqueue_in_child($out, 5);
    my ($n, $bad) = devices_while($pid);
    waitpid($pid, 0);
    Test::More::cmp_ok($n, '>=', $::DEVICES, "devices were served meanwhile ($n requests)");
    Test::More::is(scalar @$bad, 0, "every device answer was 200")
        or Test::More::diag("not 200: " . CORE::join(", ", (@$bad)[0 .. ($#$bad < 9 ? $#$bad : 9)]));
    open my $fh, '<', $out or die "$out: $!";
    my $got = <$fh>;
    CORE::chomp($got);
    Test::More::is($got, "200 200 200 200 200", "every enqueue answered 200");
}
--- redis_check eval
[ [ "LLEN mdm:push", "10000" ],
  [ "LRANGE mdm:q:{LOAD-010000} 0 -1", [ map { "BULK-$_" } 1 .. 5 ] ],
  [ "SCARD mdm:cmd:BULK-5:targets", "10000" ] ]
--- no_error_log
answered 503
