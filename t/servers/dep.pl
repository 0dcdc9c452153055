#!/usr/bin/perl
# A mock of Apple's DEP (ADE) device-assignment API for tests: plain
# HTTP/1.1 on 127.0.0.1, one process, one IO::Select loop, keep-alive.
# One mock is one ABM "MDM server" (one OAuth token): tests with two DEP
# names start two mocks.
#
#   dep.pl --port N [--log FILE] [--pid FILE] [--fetch-max N] [--sync-max N]
#          [--ck CK_x --cs CS_x --at AT_x --as AS_x]
#
# Strict like Apple (and stricter where it helps the tests):
#   GET /session: OAuth 1.0a HMAC-SHA1 verified (base string from the Host
#     header), oauth_version 1.0, timestamp within 300 s, nonce never
#     reused (401 otherwise); answers {"auth_session_token": "..."}.
#   every other API call: X-ADM-Auth-Session of a live session (401, or 403
#     FORBIDDEN with {"unknown_session": 403}), X-Server-Protocol-Version,
#     User-Agent (400 USER_AGENT_INVALID), Content-Type application/json on
#     everything (400), limits within /account's (400 INVALID_LIMIT), at
#     most 1000 serials per assign (400); each breach is also recorded in
#     stats "violations". Sessions expire (ttl) and rotate: every
#     rotate_every calls the answer carries a new X-ADM-Auth-Session and
#     the old token is dead from then on.
#   GET /account, POST /server/devices, POST /devices/sync (cursors: fetch
#     pages the device list, sync pages the change log; EXHAUSTED_CURSOR,
#     EXPIRED_CURSOR, INVALID_CURSOR), POST /devices, POST|GET /profile,
#     PUT|POST|DELETE /profile/devices (per serial SUCCESS, NOT_ACCESSIBLE
#     for unknown serials, or what assign_rules say), POST /devices/disown.
#     A successful assign changes the device (profile_status "assigned")
#     and logs a "modified" change, as Apple does.
#
# Control (no session needed; JSON in and out):
#   POST /_ctl/devices  {"add": N | [serials], "prefix": "P",
#                        "profile_status": "empty", "profile_uuid": "",
#                        "modify": [serials], "fields": {...},
#                        "delete": [serials]}
#   POST /_ctl/inject   {"path": "/server/devices" | "*", "status": 503,
#                        "body": "...", "headers": {...}, "count": 1,
#                        "skip": N}   (N matching calls go through first)
#                       (before the session check; appended to a list)
#   POST /_ctl/assign_rules {"rules": {"SERIAL": ["THROTTLED", "SUCCESS"]},
#                        "retry_after": 2}   (each assign of SERIAL takes
#                        the next; when used up: normal)
#   POST /_ctl/sessions {"expire": 1, "rotate_every": N, "ttl": SECONDS,
#                        "unknown_session": 401|403}
#   POST /_ctl/slow     {"/profile/devices": 1.5}  the call is carried out,
#                        then the whole mock sleeps that long before it
#                        answers ({} ends it)
#   POST /_ctl/cursors  {"expire": 1}        (every cursor made so far is
#                        EXPIRED_CURSOR from now on)
#   GET  /_ctl/stats[?full=1] counts per path, sessions issued, assign
#                        calls and batch sizes, assigned_total, assigned_multi
#                        (serials assigned successfully more than once),
#                        times per path (last 1000), violations, devices;
#                        full=1 adds "assigned" {serial: successes} and
#                        "attempts" {serial: [[time, result], ...]}
#   POST /_ctl/reset    stats back to zero
# SIGTERM/SIGINT: exit 0.

use strict;
use warnings;

use Digest::SHA qw(hmac_sha1_base64);
use Getopt::Long qw(GetOptions);
use IO::Handle;
use JSON::PP ();
use Time::HiRes qw(time);
use POSIX qw(strftime);

use FindBin;
use lib $FindBin::Bin;
use MockHTTP;

my %opt = (ck => 'CK_mock', cs => 'CS_mock', at => 'AT_mock', as => 'AS_mock',
           'fetch-max' => 1000, 'sync-max' => 1000);
GetOptions(\%opt, 'port=i', 'log=s', 'pid=s', 'rules=s', 'fetch-max=i',
           'sync-max=i', 'ck=s', 'cs=s', 'at=s', 'as=s')
    or die "usage: $0 --port N [--log F] [--pid F]\n";
die "$0: --port is required\n" unless $opt{port};

$| = 1;
STDERR->autoflush(1);
my $JSON = JSON::PP->new->utf8->canonical;

my $log;
if ($opt{log}) {
    open $log, '>>:raw', $opt{log} or die "$0: open $opt{log}: $!\n";
    $log->autoflush(1);
}

my $listen = MockHTTP::listen_on($opt{port}, $opt{pid});

# --- state ------------------------------------------------------------

my (%Sess, %Nonce);
my %SessConf = (ttl => 600, rotate_every => 0, unknown_session => 401);
my $CursorMin = 0;          # cursors made before this (seq) are expired
my $CursorSeq = 0;
my (@Order, %Dev, %Gone);   # serials in arrival order, their records
my @Log;                    # changes: [serial, op_type, op_date, json]
my %Profiles;
my (@Inject, %AssignRules, %Slow);
my $RetryAfter = 0;
my %St;
my $Serial = 0;
my $SessSeq = 0;          # session tokens look like "N;hex"

sub reset_stats {
    %St = (calls => {}, sessions_issued => 0, assign_calls => 0,
           assign_sizes => [], assigned => {}, attempts => {}, times => {}, violations => [],
           limits => {});
}
reset_stats();

sub iso { strftime('%Y-%m-%dT%H:%M:%SZ', gmtime($_[0] // time)) }

sub jstr {
    my ($s) = @_;
    $s =~ s/(["\\])/\\$1/g;
    $s =~ s/([\x00-\x1f])/sprintf('\\u%04x', ord $1)/ge;
    return "\"$s\"";
}

# the device as Apple's JSON, by hand: JSON::PP is too slow for 100,000
sub dev_json {
    my ($d, $op, $date) = @_;
    my @k = qw(serial_number model description color asset_tag os
               device_family profile_status profile_uuid profile_assign_time
               profile_push_time device_assigned_date device_assigned_by);
    my @p = map { jstr($_) . ':' . jstr($d->{$_} // '') } @k;
    push @p, '"op_type":' . jstr($op), '"op_date":' . jstr($date) if $op;
    return '{' . join(',', @p) . '}';
}

sub change {
    my ($serial, $op) = @_;
    my $date = iso();
    push @Log, [$serial, $op, $date, dev_json($Dev{$serial}, $op, $date)];
}

sub add_device {
    my ($serial, $c) = @_;
    return if $Dev{$serial} && !$Gone{$serial};
    push @Order, $serial unless $Dev{$serial};
    delete $Gone{$serial};
    $Dev{$serial} = {
        serial_number => $serial, model => 'MacBook Air', description =>
        'MBA 13', color => 'SPACE GRAY', asset_tag => '', os => 'OSX',
        device_family => 'Mac', profile_status => $c->{profile_status} // 'empty',
        profile_uuid => $c->{profile_uuid} // '', profile_assign_time => '',
        profile_push_time => '', device_assigned_date => iso(),
        device_assigned_by => 'admin@example.com',
    };
    change($serial, 'added');
}

sub write_log { syswrite($log, $JSON->encode($_[0]) . "\n") }

sub violation {
    my ($what) = @_;
    push @{ $St{violations} }, $what if @{ $St{violations} } < 100;
}

# --- HTTP -------------------------------------------------------------

sub respond { MockHTTP::respond(@_[0 .. 3], 'UTF8') }

sub pct {
    my ($s) = @_;
    $s =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge;
    return $s;
}

sub unpct { my ($s) = @_; $s =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge; $s }

sub session_new {
    my $t = sprintf("%d;%08x%08x", ++$SessSeq, rand(2**32), rand(2**32));
    $Sess{$t} = { created => time, calls => 0 };
    $St{sessions_issued}++;
    return $t;
}

sub do_session {
    my ($c, $r) = @_;
    my $a = $r->{headers}{authorization} // '';
    return respond($c, 400, 'MISSING_OAUTH') unless $a =~ s/^OAuth\s+//;
    my %p;
    for my $kv (split /\s*,\s*/, $a) {
        my ($k, $v) = $kv =~ /^([\w]+)="(.*)"$/ or return respond($c, 400, 'BAD_OAUTH');
        return respond($c, 400, 'DUPLICATE_OAUTH_PARAM') if exists $p{$k};
        $p{$k} = unpct($v);
    }
    return respond($c, 400, 'BAD_SIGNATURE_METHOD')
        unless ($p{oauth_signature_method} // '') eq 'HMAC-SHA1';
    return respond($c, 400, 'BAD_VERSION') unless ($p{oauth_version} // '') eq '1.0';
    for (qw(oauth_consumer_key oauth_token oauth_timestamp oauth_nonce oauth_signature)) {
        return respond($c, 400, "MISSING_$_") unless defined $p{$_};
    }
    return respond($c, 401, 'UNAUTHORIZED')
        unless $p{oauth_consumer_key} eq $opt{ck} && $p{oauth_token} eq $opt{at};
    if (abs($p{oauth_timestamp} - time) > 300) {
        violation('stale oauth_timestamp');
        return respond($c, 401, 'UNAUTHORIZED');
    }
    if ($Nonce{"$p{oauth_timestamp}:$p{oauth_nonce}"}++) {
        violation('reused nonce');
        return respond($c, 401, 'UNAUTHORIZED');
    }
    my $sig = delete $p{oauth_signature};
    delete $p{realm};
    my $url = 'http://' . ($r->{headers}{host} // '') . '/session';
    my $params = join '&', map { pct($_) . '=' . pct($p{$_}) } sort keys %p;
    my $base = 'GET&' . pct($url) . '&' . pct($params);
    my $want = hmac_sha1_base64($base, pct($opt{cs}) . '&' . pct($opt{as}));
    $want .= '=' while length($want) % 4;
    if ($sig ne $want) {
        violation('bad signature');
        return respond($c, 401, 'UNAUTHORIZED');
    }
    respond($c, 200, $JSON->encode({ auth_session_token => session_new() }));
}

sub limit_ok {
    my ($c, $path, $b, $max) = @_;
    my $l = $b->{limit} // 100;
    $St{limits}{$path} = $l;
    return 1 if $l =~ /^\d+$/ && $l >= 1 && $l <= $max;
    violation("limit $l on $path");
    respond($c, 400, 'INVALID_LIMIT');
    return 0;
}

# cursors: F.seq.idx.logpos (fetch) or S.seq.logpos (sync)
sub cursor_new { my $s = ++$CursorSeq; join '.', @_[0 .. 0], $s, @_[1 .. $#_] }

sub cursor_parse {
    my ($c, $cur) = @_;
    my @p = split /\./, $cur // '';
    if (!(@p == 4 && $p[0] eq 'F' || @p == 3 && $p[0] eq 'S')
        || grep { !/^\d+$/ } @p[1 .. $#p])
    {
        respond($c, 400, '"INVALID_CURSOR"');
        return;
    }
    if ($p[1] <= $CursorMin) {
        respond($c, 400, '"EXPIRED_CURSOR"');
        return;
    }
    return @p;
}

sub page {
    my ($devs, $cursor, $more) = @_;
    return '{"devices":[' . join(',', @$devs) . '],"cursor":' . jstr($cursor)
         . ',"fetched_until":' . jstr(iso()) . ',"more_to_follow":'
         . ($more ? 'true' : 'false') . '}';
}

sub do_fetch {
    my ($c, $b) = @_;
    return unless limit_ok($c, '/server/devices', $b, $opt{'fetch-max'});
    my ($idx, $pos) = (0, scalar @Log);
    if (defined $b->{cursor}) {
        my @p = cursor_parse($c, $b->{cursor}) or return;
        return respond($c, 400, '"INVALID_CURSOR"') if $p[0] ne 'F';
        ($idx, $pos) = @p[2, 3];
        return respond($c, 400, '"EXHAUSTED_CURSOR"') if $idx >= @Order;
    }
    my @out;
    while ($idx < @Order && @out < ($b->{limit} // 100)) {
        my $s = $Order[$idx++];
        push @out, dev_json($Dev{$s}) unless $Gone{$s};
    }
    respond($c, 200, page(\@out, cursor_new('F', $idx, $pos), $idx < @Order));
}

sub do_sync {
    my ($c, $b) = @_;
    return unless limit_ok($c, '/devices/sync', $b, $opt{'sync-max'});
    return respond($c, 400, '"CURSOR_REQUIRED"') unless defined $b->{cursor};
    my @p = cursor_parse($c, $b->{cursor}) or return;
    my $pos = $p[-1];
    my $end = $pos + ($b->{limit} // 100);
    $end = @Log if $end > @Log;
    my @out = map { $_->[3] } @Log[$pos .. $end - 1];
    respond($c, 200, page(\@out, cursor_new('S', $end), $end < @Log));
}

sub do_details {
    my ($c, $b) = @_;
    my %out;
    for my $s (@{ $b->{devices} // [] }) {
        $out{$s} = ($Dev{$s} && !$Gone{$s})
            ? { %{ $Dev{$s} }, response_status => 'SUCCESS' }
            : { response_status => 'NOT_ACCESSIBLE' };
    }
    respond($c, 200, $JSON->encode({ devices => \%out }));
}

sub do_assign {
    my ($c, $b, $method) = @_;
    my $list = $b->{devices};
    return respond($c, 400, 'INVALID_REQUEST') unless ref $list eq 'ARRAY' && @$list;
    if (@$list > 1000) {
        violation('assign of ' . scalar(@$list) . ' serials');
        return respond($c, 400, 'TOO_MANY_DEVICES');
    }
    my $remove = $method eq 'DELETE';
    my $uuid = $b->{profile_uuid} // '';
    return respond($c, 400, 'PROFILE_UUID_REQUIRED') if !$remove && $uuid eq '';
    $St{assign_calls}++ unless $remove;
    push @{ $St{assign_sizes} }, scalar @$list unless $remove;
    my (%out, $throttled);
    for my $s (@$list) {
        my $rule = $AssignRules{$s} && @{ $AssignRules{$s} } ? shift @{ $AssignRules{$s} } : '';
        my $res = $rule || (($Dev{$s} && !$Gone{$s}) ? 'SUCCESS' : 'NOT_ACCESSIBLE');
        $out{$s} = $res;
        push @{ $St{attempts}{$s} }, [time, $res] unless $remove;
        $throttled = 1 if $res eq 'THROTTLED';
        next unless $res eq 'SUCCESS' && $Dev{$s};
        if ($remove) {
            @{ $Dev{$s} }{qw(profile_status profile_uuid)} = ('removed', '');
        } else {
            $St{assigned}{$s}++;
            @{ $Dev{$s} }{qw(profile_status profile_uuid profile_assign_time)} =
                ('assigned', $uuid, iso());
        }
        change($s, 'modified');
    }
    my $resp = { devices => \%out };
    $resp->{profile_uuid} = $uuid unless $remove;
    $resp->{retry_after_seconds} = $RetryAfter if $throttled && $RetryAfter;
    respond($c, 200, $JSON->encode($resp));
}

sub do_profile {
    my ($c, $r, $b) = @_;
    if ($r->{method} eq 'GET') {
        my ($u) = $r->{path} =~ /profile_uuid=([^&]+)/;
        my $p = $Profiles{ unpct($u // '') };
        return $p ? respond($c, 200, $JSON->encode($p)) : respond($c, 404, 'NOT_FOUND');
    }
    return respond($c, 400, 'CONFIG_NAME_REQUIRED') unless ($b->{profile_name} // '') ne '';
    my $uuid = sprintf('%08X%08X%016X', rand(2**32), rand(2**32), ++$Serial);
    $Profiles{$uuid} = { %$b, profile_uuid => $uuid };
    my %out = map { $_ => ($Dev{$_} ? 'SUCCESS' : 'NOT_ACCESSIBLE') } @{ $b->{devices} // [] };
    respond($c, 200, $JSON->encode({ profile_uuid => $uuid, devices => \%out }));
}

sub do_account {
    my ($c) = @_;
    my $u = sub { { uri => $_[0], http_method => [$_[1]],
                    limit => { default => 100, maximum => $_[2] } } };
    respond($c, 200, $JSON->encode({
        server_name => 'mock', server_uuid => 'UUID-MOCK', admin_id => 'a@x',
        org_name => 'Mock Org', org_email => 'o@x', org_phone => '1',
        org_address => 'x', org_id => '1', org_id_hash => 'h', org_type => 'org',
        org_version => 'v2',
        urls => [ $u->('/server/devices', 'POST', $opt{'fetch-max'}),
                  $u->('/devices/sync', 'POST', $opt{'sync-max'}),
                  $u->('/profile/devices', 'PUT', 1000) ] }));
}

sub control {
    my ($c, $r, $path) = @_;
    my $b = eval { $JSON->decode($r->{body} || '{}') } // {};
    if ($path eq '/_ctl/stats') {
        my %s = %St;
        my @a = values %{ $St{assigned} };
        $s{assigned_total} = scalar @a;
        $s{assigned_multi} = scalar grep { $_ > 1 } @a;
        delete @s{qw(assigned attempts)} unless $r->{path} =~ /full=1/;
        $s{devices} = @Order - keys %Gone;
        $s{log} = scalar @Log;
        return respond($c, 200, $JSON->encode(\%s));
    }
    if ($path eq '/_ctl/reset') { reset_stats(); return respond($c, 200, '{}') }
    if ($path eq '/_ctl/devices') {
        my $add = $b->{add} // [];
        $add = [ map { sprintf('%s%07d', $b->{prefix} // 'S', ++$Serial) } 1 .. $add ]
            unless ref $add;
        add_device($_, $b) for @$add;
        for my $s (@{ $b->{modify} // [] }) {
            next unless $Dev{$s};
            %{ $Dev{$s} } = (%{ $Dev{$s} }, %{ $b->{fields} // {} });
            change($s, 'modified');
        }
        for my $s (@{ $b->{delete} // [] }) {
            next unless $Dev{$s} && !$Gone{$s};
            $Gone{$s} = 1;
            change($s, 'deleted');
        }
        return respond($c, 200, $JSON->encode({ added => $add }));
    }
    if ($path eq '/_ctl/inject') {
        push @Inject, { count => 1, %$b };
        return respond($c, 200, '{}');
    }
    if ($path eq '/_ctl/assign_rules') {
        %AssignRules = (%AssignRules, %{ $b->{rules} // {} });
        $RetryAfter = $b->{retry_after} if defined $b->{retry_after};
        return respond($c, 200, '{}');
    }
    if ($path eq '/_ctl/sessions') {
        %Sess = () if $b->{expire};
        $SessConf{$_} = $b->{$_} for grep { defined $b->{$_} } qw(ttl rotate_every unknown_session);
        return respond($c, 200, '{}');
    }
    if ($path eq '/_ctl/slow') {
        %Slow = %$b;
        return respond($c, 200, '{}');
    }
    if ($path eq '/_ctl/cursors') {
        $CursorMin = $CursorSeq if $b->{expire};
        return respond($c, 200, '{}');
    }
    respond($c, 404, 'NOT_FOUND');
}

sub handle {
    my ($c, $r) = @_;
    (my $path = $r->{path}) =~ s/\?.*//s;
    return control($c, $r, $path) if $path =~ m{^/_ctl/};

    $St{calls}{$path}++;
    my $t = $St{times}{$path} //= [];
    push @$t, time;
    shift @$t if @$t > 1000;
    write_log({ time => time, method => $r->{method}, path => $r->{path} }) if $log;

    for my $i (0 .. $#Inject) {
        my $j = $Inject[$i];
        next unless $j->{path} eq '*' || $j->{path} eq $path;
        next if $j->{skip} && $j->{skip}-- > 0;
        splice @Inject, $i, 1 if --$j->{count} <= 0;
        return respond($c, $j->{status}, $j->{body} // '', { %{ $j->{headers} // {} } });
    }

    my $h = $r->{headers};
    if (($h->{'content-type'} // '') !~ m{^application/json}i) {
        violation("content-type on $path");
        return respond($c, 400, 'INVALID_CONTENT_TYPE');
    }
    if (($h->{'user-agent'} // '') eq '') {
        violation("user-agent on $path");
        return respond($c, 400, 'USER_AGENT_INVALID');
    }
    return do_session($c, $r) if $path eq '/session' && $r->{method} eq 'GET';

    if (($h->{'x-server-protocol-version'} // '') !~ /^\d+$/) {
        violation("protocol version on $path");
        return respond($c, 400, 'PROTOCOL_VERSION_REQUIRED');
    }
    my $tok = $h->{'x-adm-auth-session'} // '';
    my $s = $Sess{$tok};
    if (!$s || time - $s->{created} > $SessConf{ttl}) {
        delete $Sess{$tok};
        return respond($c, $SessConf{unknown_session},
                       $SessConf{unknown_session} == 403 ? 'FORBIDDEN' : 'UNAUTHORIZED');
    }
    my %rh;
    if ($SessConf{rotate_every} && ++$s->{calls} >= $SessConf{rotate_every}) {
        delete $Sess{$tok};
        $rh{'X-ADM-Auth-Session'} = session_new();
    }

    my $b = {};
    if ($r->{method} ne 'GET' && length $r->{body}) {
        $b = eval { $JSON->decode($r->{body}) };
        return respond($c, 400, 'MALFORMED_REQUEST_BODY', \%rh) unless ref $b eq 'HASH';
    }
    my $m = $r->{method};
    my $before = length $c->{out};
    if ($path eq '/account' && $m eq 'GET') { do_account($c) }
    elsif ($path eq '/server/devices' && $m eq 'POST') { do_fetch($c, $b) }
    elsif ($path eq '/devices/sync' && $m eq 'POST') { do_sync($c, $b) }
    elsif ($path eq '/devices' && $m eq 'POST') { do_details($c, $b) }
    elsif ($path eq '/profile' && ($m eq 'POST' || $m eq 'GET')) { do_profile($c, $r, $b) }
    elsif ($path eq '/profile/devices' && $m =~ /^(PUT|POST|DELETE)$/) { do_assign($c, $b, $m) }
    elsif ($path eq '/devices/disown' && $m eq 'POST') {
        my %out;
        for my $x (@{ $b->{devices} // [] }) {
            $out{$x} = ($Dev{$x} && !$Gone{$x}) ? 'SUCCESS' : 'NOT_ACCESSIBLE';
            next unless $out{$x} eq 'SUCCESS';
            $Gone{$x} = 1;
            change($x, 'deleted');
        }
        respond($c, 200, $JSON->encode({ devices => \%out }));
    }
    else { respond($c, 404, 'NOT_FOUND') }

    # done, but answered late: a client killed meanwhile never hears of it
    select(undef, undef, undef, $Slow{$path}) if $Slow{$path};

    # the rotated session rides on the answer just made
    if (%rh) {
        my $hdr = "X-ADM-Auth-Session: $rh{'X-ADM-Auth-Session'}\r\n";
        my $i = index($c->{out}, "\r\n", $before);
        substr($c->{out}, $i + 2, 0, $hdr);
    }
}

print "listening 127.0.0.1:$opt{port}\n";

MockHTTP::serve($listen, \&handle);
unlink $opt{pid} if $opt{pid};
exit 0;
