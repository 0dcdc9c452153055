#!/usr/bin/perl
# A mock of Apple's App and Book Management API v2 (Apps and Books, "VPP")
# for tests: plain HTTP/1.1 on 127.0.0.1, one process, one IO::Select
# loop, keep-alive.  One mock holds any number of locations, each reached
# by its own content token (sToken).
#
#   vpp.pl --port N [--log FILE] [--pid FILE]
#
# Strict like Apple (and stricter where it helps the tests):
#   every call but /service/config: Authorization: Bearer <the whole
#     sToken> (none: 401 9601; unknown: 401 9722; expired: 401 9621;
#     revoked: 401 9625); Content-Type application/json on every POST
#     (400 9727).  Every breach is also recorded in stats "violations".
#   GET /service/config: URLs, errorCodes, limits (maxSerialNumbers as set
#     by the control below, maxAssets 25), notificationTypes.
#   GET|POST /client/config: locationName, countryISO2ACode, mdmInfo (once
#     set: POST needs mdmInfo {id, name}, name <= 100 characters),
#     notificationUrl, notificationTypes.  A POST with a notificationUrl
#     first delivers a TEST_NOTIFICATION there, as Apple does (POST, JSON,
#     Authorization: Bearer <notificationAuthToken>, 5 s), and keeps the
#     config only if it is answered 2xx; otherwise 400 9602 (Apple's exact
#     error for this is not documented).  A notificationUrl on this mock
#     (/_ctl/sink/...) is delivered in-process (the mock is one loop).
#   GET /assets[?pageIndex=N&adamId=..]: pages of page_size assets;
#     currentPageIndex, nextPageIndex (absent on the last page), size,
#     totalPages, versionId.
#   GET /assignments[?sinceVersionId=V&pageIndex=N&adamId=&serialNumber=]:
#     full list, or what was associated since version V (an unknown V:
#     400 9602); pages of asg_page_size.
#   POST /assets/associate|disassociate {"assets":[{adamId,pricingParam}],
#     "serialNumbers":[...]}: at most maxSerialNumbers serials (400 9701),
#     one asset (this mock), an asset of the location (400 9602);
#     answers {eventId, uId} at once; the licenses are taken in order of
#     the serials, and a serial finding none left fails 9709 (not enough
#     licenses); a serial holding the license already takes none.
#   GET /status?eventId=E: {eventStatus: "PENDING"} until event_delay
#     seconds passed, then COMPLETE (or FAILED when every serial failed),
#     eventType, numCompleted, numRequested, failures [{errorNumber,
#     errorMessage, errorInfo: {serialNumbers}}].
#   Every answer of a token that expires within 15 days carries
#     tokenExpirationDate.
#
# Control (no token; JSON in and out):
#   POST /_ctl/location {"name": "L1", "org": "Org", "exp": UNIXTIME,
#                        "state": "ok|expired|revoked", "mdm": {mdmInfo}}
#                       -> {"token": sToken} (a new token of that location:
#                       a location made again keeps its assets)
#   POST /_ctl/token    {"token": T, "state": "expired|revoked|ok"}
#   POST /_ctl/assets   {"location": L, "assets": [{"adamId": "1",
#                        "total": N, "pricingParam": "STDQ",
#                        "deviceAssignable": true}]}
#   POST /_ctl/assign   {"location": L, "adamId": A, "serials": [...],
#                        "remove": 1}  (associations made, or taken away,
#                       outside this MDM)
#   POST /_ctl/config   {"maxSerialNumbers": N, "page_size": N,
#                        "asg_page_size": N, "event_delay": SECONDS,
#                        "event_fail": ERRNO (events fail whole; 0 ends)}
#   POST /_ctl/inject   {"path": "/assets" | "*", "status": 503, "body":
#                        "...", "headers": {...}, "count": 1, "skip": N}
#                       (after the Bearer check; N matching calls pass first)
#   POST /_ctl/slow     {"/assets": 1.5}  the call is carried out, then the
#                       whole mock sleeps that long before it answers
#                       ({} ends it)
#   GET  /_ctl/stats    calls per path, associate batch sizes, violations,
#                       per location: mdmInfo, assets and their counts,
#                       assignments
#   POST /_ctl/reset    stats back to zero
#   POST /_ctl/sink/X   a notification receiver: 200, recorded in stats
#                       "sink" [{path, authorization, body}]
# SIGTERM/SIGINT: exit 0.

use strict;
use warnings;

use Getopt::Long qw(GetOptions);
use IO::Handle;
use JSON::PP ();
use HTTP::Tiny ();
use MIME::Base64 qw(encode_base64);
use POSIX qw(strftime);

use FindBin;
use lib $FindBin::Bin;
use MockHTTP;
use Time::HiRes qw(time);

my %opt;
GetOptions(\%opt, 'port=i', 'log=s', 'pid=s', 'rules=s')
    or die "usage: $0 --port N [--log F] [--pid F]\n";
die "$0: --port is required\n" unless $opt{port};

$| = 1;
my $JSON = JSON::PP->new->utf8->canonical;

my $log;
if ($opt{log}) {
    open $log, '>>:raw', $opt{log} or die "$0: open $opt{log}: $!\n";
    $log->autoflush(1);
}

my $listen = MockHTTP::listen_on($opt{port}, $opt{pid});

# --- state ------------------------------------------------------------

my %Tok;      # sToken -> {loc, state, exp}
my %Loc;      # name -> {org, mdm, assets {adamId -> {...}}, order [adamIds],
              #          asg {adamId -> {serial -> version}}, log [[v, a, s]],
              #          version, notify}
my %Ev;       # eventId -> {at, type, requested, failures, completed}
my %Conf = (maxSerialNumbers => 1000, page_size => 100, asg_page_size => 1000,
            event_delay => 0.3, event_fail => 0);
my (@Inject, %Slow);
my %St;
my $Seq = 0;

sub reset_stats { %St = (calls => {}, batches => [], violations => [], events => 0,
                        sink => [], test_notifications => []) }
reset_stats();

sub violation {
    push @{ $St{violations} }, $_[0] if @{ $St{violations} } < 100;
}

sub apple_date { strftime('%Y-%m-%dT%H:%M:%S+0000', gmtime($_[0])) }

# --- HTTP -------------------------------------------------------------

sub respond { MockHTTP::respond(@_[0 .. 3], 'UTF-8') }

my %Msg = (9601 => 'Login required', 9602 => 'Invalid argument',
           9621 => 'Authentication token expired', 9625 => 'Token revoked',
           9646 => 'Too many requests', 9701 => 'Too many serial numbers',
           9709 => 'Not enough licenses', 9722 => 'Invalid Authorization header',
           9727 => 'Invalid content type');

sub error {
    my ($c, $status, $num, $info) = @_;
    my $b = { errorNumber => $num, errorMessage => $Msg{$num} // 'error' };
    $b->{errorInfo} = $info if $info;
    respond($c, $status, $JSON->encode($b));
}

# what every answer of a token carries
sub answer {
    my ($c, $t, $b) = @_;
    $b->{uId} = '2049025000431439';
    $b->{tokenExpirationDate} = apple_date($t->{exp}) if $t->{exp} - time < 15 * 86400;
    respond($c, 200, $JSON->encode($b));
}

sub qs {
    my ($path) = @_;
    my %q;
    my (undef, $q) = split /\?/, $path, 2;
    for (split /&/, $q // '') {
        my ($k, $v) = split /=/, $_, 2;
        $v //= '';
        $v =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
        $q{$k} = $v;
    }
    return \%q;
}

sub pages {
    my ($list, $size, $q, $key, $extra) = @_;
    my $i = $q->{pageIndex} // 0;
    my $total = int((@$list + $size - 1) / $size) || 1;
    return if $i !~ /^\d+$/ || $i >= $total;
    my @p = grep { defined } @$list[$i * $size .. ($i + 1) * $size - 1];
    my $b = { $key => \@p, currentPageIndex => $i + 0, size => scalar @p,
              totalPages => $total, %$extra };
    $b->{nextPageIndex} = $i + 1 if $i + 1 < $total;
    return $b;
}

sub asset_json {
    my ($l, $a) = @_;
    my $x = $l->{assets}{$a};
    my $assigned = keys %{ $l->{asg}{$a} // {} };
    return { adamId => $a, pricingParam => $x->{pricingParam}, productType => 'App',
             assignedCount => $assigned + 0, availableCount => $x->{total} - $assigned,
             retiredCount => 0, totalCount => $x->{total} + 0,
             deviceAssignable => $x->{deviceAssignable} ? JSON::PP::true : JSON::PP::false,
             revocable => JSON::PP::true, supportedPlatforms => ['iOS', 'macOS'] };
}

sub do_assets {
    my ($c, $t, $l, $q) = @_;
    my @a = grep { !defined $q->{adamId} || $_ eq $q->{adamId} } @{ $l->{order} };
    my $b = pages([ map { asset_json($l, $_) } @a ], $Conf{page_size}, $q, 'assets',
                  { versionId => "$l->{version}" });
    return error($c, 400, 9602) unless $b;
    answer($c, $t, $b);
}

sub do_assignments {
    my ($c, $t, $l, $q) = @_;
    my @list;
    if (defined $q->{sinceVersionId}) {
        my $v = $q->{sinceVersionId};
        return error($c, 400, 9602) unless $v =~ /^\d+$/ && $v <= $l->{version};
        for my $e (@{ $l->{log} }) {
            my ($ver, $a, $s) = @$e;
            next unless $ver > $v && defined $l->{asg}{$a}{$s};
            push @list, [$a, $s];
        }
    } else {
        for my $a (@{ $l->{order} }) {
            push @list, [$a, $_] for sort keys %{ $l->{asg}{$a} // {} };
        }
    }
    @list = grep { (!defined $q->{adamId} || $_->[0] eq $q->{adamId})
                   && (!defined $q->{serialNumber} || $_->[1] eq $q->{serialNumber}) } @list;
    my @j = map { { adamId => $_->[0], pricingParam => $l->{assets}{ $_->[0] }{pricingParam},
                    serialNumber => $_->[1] } } @list;
    my $b = pages(\@j, $Conf{asg_page_size}, $q, 'assignments', { versionId => "$l->{version}" });
    return error($c, 400, 9602) unless $b;
    answer($c, $t, $b);
}

sub do_associate {
    my ($c, $t, $l, $b, $dis) = @_;
    my $assets = $b->{assets};
    my $serials = $b->{serialNumbers};
    if (ref $assets ne 'ARRAY' || @$assets != 1 || ref $serials ne 'ARRAY' || !@$serials
        || grep { ref $_ || !length $_ } @$serials)
    {
        violation('associate body');
        return error($c, 400, 9602);
    }
    if (@$serials > $Conf{maxSerialNumbers}) {
        violation('associate of ' . scalar(@$serials) . ' serials');
        return error($c, 400, 9701);
    }
    my $a = $assets->[0]{adamId} // '';
    my $x = $l->{assets}{$a};
    if (!$x || ($assets->[0]{pricingParam} // '') ne $x->{pricingParam}) {
        violation("associate of unknown asset $a");
        return error($c, 400, 9602, { assets => [$assets->[0]] });
    }
    push @{ $St{batches} }, scalar @$serials unless $dis;
    my %fail;
    for my $s (@$serials) {
        my $h = $l->{asg}{$a} //= {};
        if ($dis) {
            delete $h->{$s};
            next;
        }
        next if defined $h->{$s};
        if ($x->{total} - keys(%$h) <= 0) {
            push @{ $fail{9709} }, $s;
            next;
        }
        $h->{$s} = ++$l->{version};
        push @{ $l->{log} }, [$l->{version}, $a, $s];
    }
    $l->{version}++ if $dis;
    my $id = sprintf('%d%08d', time, ++$Seq);
    $St{events}++;
    $Ev{$id} = { at => time + $Conf{event_delay}, type => $dis ? 'DISASSOCIATE' : 'ASSOCIATE',
                 requested => scalar @$serials, failures => \%fail, fail => $Conf{event_fail} };
    answer($c, $t, { eventId => $id });
}

sub do_status {
    my ($c, $t, $q) = @_;
    my $e = $Ev{ $q->{eventId} // '' } or return error($c, 400, 9602);
    return answer($c, $t, { eventStatus => 'PENDING', eventType => $e->{type} })
        if time < $e->{at};
    my @f = map { { errorNumber => $_ + 0, errorMessage => $Msg{$_} // 'error',
                    errorInfo => { serialNumbers => $e->{failures}{$_} } } }
            sort keys %{ $e->{failures} };
    my $failed = 0;
    $failed += @{ $e->{failures}{$_} } for keys %{ $e->{failures} };
    if ($e->{fail}) {
        return answer($c, $t, { eventStatus => 'FAILED', eventType => $e->{type},
            numCompleted => 0, numRequested => $e->{requested},
            failures => [{ errorNumber => $e->{fail} + 0,
                           errorMessage => $Msg{ $e->{fail} } // 'error' }] });
    }
    answer($c, $t, { eventStatus => ($failed == $e->{requested} ? 'FAILED' : 'COMPLETE'),
                     eventType => $e->{type}, numCompleted => $e->{requested} - $failed,
                     numRequested => $e->{requested}, failures => \@f });
}

sub do_client_config {
    my ($c, $t, $l, $r, $b) = @_;
    if ($r->{method} eq 'POST') {
        my $m = $b->{mdmInfo};
        if (ref $m ne 'HASH' || !length($m->{id} // '') || !length($m->{name} // '')
            || length($m->{name}) > 100)
        {
            violation('client config mdmInfo');
            return error($c, 400, 9602);
        }
        if (length($b->{notificationUrl} // '')
            && !test_notification($b->{notificationUrl}, $b->{notificationAuthToken}))
        {
            return respond($c, 400, $JSON->encode({ errorNumber => 9602,
                errorMessage => 'Invalid argument: the test notification to notificationUrl failed' }));
        }
        $l->{mdm} = { %$m };
        $l->{notify} = { map { $_ => $b->{$_} } grep { exists $b->{$_} }
                         qw(notificationUrl notificationAuthToken notificationTypes) };
    }
    my $out = { locationName => $l->{name}, countryISO2ACode => 'US',
                defaultPlatform => 'volumestore', clientContext => '',
                %{ $l->{notify} // {} } };
    $out->{mdmInfo} = $l->{mdm} if $l->{mdm};
    answer($c, $t, $out);
}

# Apple's TEST_NOTIFICATION to a new notificationUrl: 1 if answered 2xx
sub test_notification {
    my ($url, $token) = @_;
    my $body = $JSON->encode({ notificationId => sprintf('test-%d-%d', $$, ++$Seq),
                               notificationType => 'TEST_NOTIFICATION', notification => {},
                               uId => '2049025000431439' });
    my %h = ('Content-Type' => 'application/json');
    $h{Authorization} = "Bearer $token" if defined $token;
    my $status;
    if ($url =~ m{^http://127\.0\.0\.1:$opt{port}(/_ctl/sink/.*)$}) {
        sink($1, $h{Authorization}, $body);
        $status = 200;
    } else {
        $status = HTTP::Tiny->new(timeout => 5)
            ->request('POST', $url, { headers => \%h, content => $body })->{status};
    }
    push @{ $St{test_notifications} }, { url => $url, status => $status + 0 };
    return $status >= 200 && $status < 300;
}

sub sink {
    my ($path, $auth, $body) = @_;
    push @{ $St{sink} }, { path => $path, authorization => $auth, body => $body }
        if @{ $St{sink} } < 100;
}

sub service_config {
    my ($c) = @_;
    my $base = "http://127.0.0.1:$opt{port}";
    respond($c, 200, $JSON->encode({
        urls => { map { $_ => "$base/$_" } qw(assets assignments client/config status
                  assets/associate assets/disassociate) },
        errorCodes => [ map { { errorNumber => $_ + 0, errorMessage => $Msg{$_} } } sort keys %Msg ],
        limits => { maxAssets => 25, maxSerialNumbers => $Conf{maxSerialNumbers} + 0,
                    maxClientUserIds => 1000, maxUsers => 100, maxMdmNameLength => 100,
                    maxMdmMetadataLength => 255, maxNotificationLength => 512 },
        notificationTypes => [qw(ASSET_MANAGEMENT ASSET_COUNT USER_MANAGEMENT USER_ASSOCIATED)],
    }));
}

sub control {
    my ($c, $r, $path) = @_;
    my $b = eval { $JSON->decode($r->{body} || '{}') } // {};
    if ($path eq '/_ctl/stats') {
        my %s = %St;
        for my $n (keys %Loc) {
            my $l = $Loc{$n};
            $s{locations}{$n} = {
                mdm => $l->{mdm}, notify => $l->{notify}, version => $l->{version},
                assets => { map { $_ => asset_json($l, $_) } @{ $l->{order} } },
                assignments => { map { $_ => [ sort keys %{ $l->{asg}{$_} } ] }
                                 keys %{ $l->{asg} } } };
        }
        return respond($c, 200, $JSON->encode(\%s));
    }
    if ($path eq '/_ctl/reset') { reset_stats(); return respond($c, 200, '{}') }
    if ($path =~ m{^/_ctl/sink/}) {
        sink($path, $r->{headers}{authorization}, $r->{body});
        return respond($c, 200, '{}');
    }
    if ($path eq '/_ctl/location') {
        my $n = $b->{name} // 'Location';
        my $l = $Loc{$n} //= { name => $n, assets => {}, order => [], asg => {}, log => [],
                               version => 1 };
        $l->{org} = $b->{org} // 'Mock Org';
        $l->{mdm} = $b->{mdm} if exists $b->{mdm};
        my $exp = $b->{exp} // time + 365 * 86400;
        my $tok = encode_base64($JSON->encode({ token => sprintf('tok%d%08x', ++$Seq, rand 2**32),
            expDate => apple_date($exp), orgName => $l->{org} }), '');
        $Tok{$tok} = { loc => $n, state => $b->{state} // 'ok', exp => $exp };
        return respond($c, 200, $JSON->encode({ token => $tok }));
    }
    if ($path eq '/_ctl/token') {
        my $t = $Tok{ $b->{token} // '' } or return respond($c, 404, '{}');
        $t->{state} = $b->{state} if $b->{state};
        $t->{exp} = $b->{exp} if $b->{exp};
        return respond($c, 200, '{}');
    }
    if ($path eq '/_ctl/assets') {
        my $l = $Loc{ $b->{location} // '' } or return respond($c, 404, '{}');
        for my $a (@{ $b->{assets} // [] }) {
            my $id = "$a->{adamId}";
            push @{ $l->{order} }, $id unless $l->{assets}{$id};
            $l->{assets}{$id} = { total => $a->{total} // 10, pricingParam => $a->{pricingParam} // 'STDQ',
                                  deviceAssignable => $a->{deviceAssignable} // 1 };
        }
        $l->{version}++;
        return respond($c, 200, '{}');
    }
    if ($path eq '/_ctl/assign') {
        my $l = $Loc{ $b->{location} // '' } or return respond($c, 404, '{}');
        if ($b->{remove}) {
            delete $l->{asg}{ $b->{adamId} }{$_} for @{ $b->{serials} // [] };
            $l->{version}++;
            return respond($c, 200, '{}');
        }
        for my $s (@{ $b->{serials} // [] }) {
            $l->{asg}{ $b->{adamId} }{$s} = ++$l->{version};
            push @{ $l->{log} }, [$l->{version}, $b->{adamId}, $s];
        }
        return respond($c, 200, '{}');
    }
    if ($path eq '/_ctl/config') {
        $Conf{$_} = $b->{$_} for keys %$b;
        return respond($c, 200, '{}');
    }
    if ($path eq '/_ctl/inject') {
        push @Inject, { count => 1, %$b };
        return respond($c, 200, '{}');
    }
    if ($path eq '/_ctl/slow') {
        %Slow = %$b;
        return respond($c, 200, '{}');
    }
    respond($c, 404, 'NOT_FOUND');
}

sub handle {
    my ($c, $r) = @_;
    (my $path = $r->{path}) =~ s/\?.*//s;
    return control($c, $r, $path) if $path =~ m{^/_ctl/};

    $St{calls}{$path}++;
    syswrite($log, $JSON->encode({ time => time, method => $r->{method}, path => $r->{path},
                                   body => $r->{body} }) . "\n") if $log;
    my $m = $r->{method};
    return service_config($c) if $path eq '/service/config' && $m eq 'GET';

    my $a = $r->{headers}{authorization};
    return error($c, 401, 9601) unless defined $a;
    my ($bearer) = $a =~ /^Bearer (\S+)$/;
    my $t = defined $bearer ? $Tok{$bearer} : undef;
    if (!$t) {
        violation("bad bearer on $path");
        return error($c, 401, 9722);
    }
    return error($c, 401, 9621) if $t->{state} eq 'expired' || $t->{exp} < time;
    return error($c, 401, 9625) if $t->{state} eq 'revoked';
    my $l = $Loc{ $t->{loc} };

    for my $i (0 .. $#Inject) {
        my $j = $Inject[$i];
        next unless $j->{path} eq '*' || $j->{path} eq $path;
        next if $j->{skip} && $j->{skip}-- > 0;
        splice @Inject, $i, 1 if --$j->{count} <= 0;
        return respond($c, $j->{status}, $j->{body} // '', { %{ $j->{headers} // {} } });
    }

    my $b = {};
    if ($m eq 'POST') {
        if (($r->{headers}{'content-type'} // '') !~ m{^application/json}i) {
            violation("content-type on $path");
            return error($c, 400, 9727);
        }
        $b = eval { $JSON->decode($r->{body}) };
        return error($c, 400, 9602) unless ref $b eq 'HASH';
    }
    my $q = qs($r->{path});
    if ($path eq '/client/config' && ($m eq 'GET' || $m eq 'POST')) {
        do_client_config($c, $t, $l, $r, $b);
    }
    elsif ($path eq '/assets' && $m eq 'GET') { do_assets($c, $t, $l, $q) }
    elsif ($path eq '/assignments' && $m eq 'GET') { do_assignments($c, $t, $l, $q) }
    elsif ($path eq '/assets/associate' && $m eq 'POST') { do_associate($c, $t, $l, $b, 0) }
    elsif ($path eq '/assets/disassociate' && $m eq 'POST') { do_associate($c, $t, $l, $b, 1) }
    elsif ($path eq '/status' && $m eq 'GET') { do_status($c, $t, $q) }
    else { respond($c, 404, 'NOT_FOUND') }

    # done, but answered late: a client gone meanwhile never hears of it
    select(undef, undef, undef, $Slow{$path}) if $Slow{$path};
}

print "listening 127.0.0.1:$opt{port}\n";

MockHTTP::serve($listen, \&handle);
unlink $opt{pid} if $opt{pid};
exit 0;
