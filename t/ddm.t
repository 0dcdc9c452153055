# Declarative Device Management, natively: the admin API under /v1/ddm/
# (KMFDDM's endpoints), the DeclarativeManagement check-in (tokens,
# declaration-items, declaration/<kind>/<id>, status) and the whole sync
# loop of a test device, from the DeclarativeManagement command it fetches
# on the connect URL to the status reports it sends. Status reports are the
# real ones of t/vectors/kmfddm. Blocks build on each other: one Redis.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use JSON::PP ();
use MIME::Base64 qw(encode_base64 decode_base64);

no_shuffle();

mdm_defaults(
    http_config => 'mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;',
    config => q{
        mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
        location = /mdm/checkin { mdm_checkin; client_max_body_size 4m; }
        location = /mdm/connect { mdm_connect; }
        location = /mdm { mdm_server; }
        location /v1/ { mdm_api; mdm_api_key secret; }
        location = /t { return 204; }
    },
);

our $MAC = '66ADE930-5FDF-5EC4-8429-15640684C489';
our $MACUSER = 'A522C2FB-D0BA-487E-BBC6-BE0DB2DC7883';
our $USER = "$MAC:$MACUSER";
our $JSON = JSON::PP->new->canonical;
our $API = [ Authorization => 'Basic ' . encode_base64('nanomdm:secret', '') ];
our $CT = $t::MDM::CheckinType;
our %Token;      # ServerTokens seen, by identifier

# Apple's example declarations (developer documentation of each type)
our %Decl = (
    'com.example.activation' => {
        Type => 'com.apple.activation.simple',
        Identifier => 'com.example.activation',
        Payload => { StandardConfigurations => [
            'com.example.passcode', 'com.example.status' ] } },
    'com.example.passcode' => {
        Type => 'com.apple.configuration.passcode.settings',
        Identifier => 'com.example.passcode',
        Payload => { RequirePasscode => JSON::PP::true, MinimumLength => 6 } },
    'com.example.status' => {
        Type => 'com.apple.configuration.management.status-subscriptions',
        Identifier => 'com.example.status',
        Payload => { StatusItems => [
            { Name => 'device.identifier.serial-number' },
            { Name => 'device.operating-system.version' } ] } },
    'com.example.properties' => {
        Type => 'com.apple.management.properties',
        Identifier => 'com.example.properties',
        Payload => { 'com.example.department' => 'Sales' } },
    'com.example.test' => {
        Type => 'com.apple.configuration.management.test',
        Identifier => 'com.example.test',
        Payload => { Echo => 'Foo' } },
);

sub http {
    my ($method, $path, $body, $headers) = @_;
    my $r = concurrent_requests(Test::Nginx::Socket::server_port(),
        [ http_request($method, $path, $body, $headers) ], timeout => 10)->[0];
    die "$method $path: $r->{error}" if $r->{error} && !$r->{status};
    return $r;
}

sub api {
    my ($method, $path, $body, @h) = @_;
    $body = $JSON->encode($body) if ref $body;
    return http($method, $path, $body, [ @$API, @h ]);
}

sub api_json {
    my $r = api(@_);
    return ($r->{status}, length $r->{body} ? $JSON->decode($r->{body}) : undef);
}

# a plist dict: strings, \"data" for <data>, \1 for <true/>
sub plist {
    my (%kv) = @_;
    my $x = qq{<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC }
        . qq{"-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n}
        . qq{<plist version="1.0">\n<dict>\n};
    for my $k (sort keys %kv) {
        my $v = $kv{$k};
        $x .= "\t<key>$k</key>\n";
        $x .= ref $v ? "\t<data>" . encode_base64($$v, '') . "</data>\n"
                     : "\t<string>$v</string>\n";
    }
    return $x . "</dict>\n</plist>\n";
}

sub device {
    my ($path, $ct, $cert, $body) = @_;
    return http('PUT', $path, $body, [ 'Content-Type' => $ct,
        'Mdm-Signature' => mdm_signature($body, $cert) ]);
}

# the identity keys of a channel: "mac" or "user"
sub ids { $_[0] eq 'user' ? (UDID => $MAC, UserID => $MACUSER) : (UDID => $MAC) }

sub ddm {
    my ($who, $endpoint, $data, %more) = @_;
    return device('/mdm/checkin', $CT, 'mac', plist(ids($who),
        MessageType => 'DeclarativeManagement', Endpoint => $endpoint,
        (defined $data ? (Data => \$data) : ()), %more));
}

sub ddm_json {
    my $r = ddm(@_);
    Test::More::is($r->{headers}{'content-type'}, 'application/json',
                   "$_[1]: application/json") if $r->{status} == 200;
    return ($r->{status}, $r->{status} == 200 ? $JSON->decode($r->{body}) : undef);
}

sub enroll {
    device('/mdm/checkin', $CT, 'mac',
           plist_set(vector('nanomdm/mdm/testdata/Authenticate.2.plist'), UDID => $MAC))
        ->{status} == 200 or die 'Authenticate failed';
    device('/mdm/checkin', $CT, 'mac',
           plist_set(vector('nanomdm/mdm/testdata/TokenUpdate.2.plist'), UDID => $MAC))
        ->{status} == 200 or die 'TokenUpdate failed';
}

sub enroll_user {
    device('/mdm/checkin', $CT, 'mac',
           plist_set(vector('commandment/testdata/TokenUpdate/10.12.2-user.xml'),
                     UDID => $MAC, UserID => $MACUSER))->{status} == 200
        or die 'user TokenUpdate failed';
}

# what the connect URL hands the channel next ("" when nothing), and the
# Acknowledged for it
sub next_command {
    my ($who) = @_;
    my $r = device('/mdm/connect', 'application/x-apple-aspen-mdm', 'mac',
                   plist(ids($who), Status => 'Idle'));
    return $r->{body};
}

sub ack {
    my ($who, $uuid) = @_;
    device('/mdm/connect', 'application/x-apple-aspen-mdm', 'mac',
           plist(ids($who), Status => 'Acknowledged', CommandUUID => $uuid));
}

# RequestType, CommandUUID and the decoded Data JSON of a command plist
sub command_data {
    my ($xml) = @_;
    my ($type) = $xml =~ m{<key>RequestType</key>\s*<string>([^<]*)</string>};
    my ($uuid) = $xml =~ m{<key>CommandUUID</key>\s*<string>([^<]*)</string>};
    my ($data) = $xml =~ m{<key>Data</key>\s*<data>([^<]*)</data>};
    return ($type // '', $uuid // '',
            defined $data ? $JSON->decode(decode_base64($data)) : undef);
}

# a device's sync, as Apple describes it: tokens (if the command had no
# Data) -> declaration-items -> each new or changed declaration. Returns
# the declarations fetched, by identifier.
our %Have;   # the device's copy, by channel: { id => ServerToken }
sub sync {
    my ($who, $token) = @_;
    my ($st, $items) = ddm_json($who, 'declaration-items');
    die "declaration-items: $st" unless $st == 200;
    Test::More::is($items->{DeclarationsToken}, $token,
                   "$who: declaration-items carry the DeclarationsToken")
        if defined $token;
    my (%fetched, %seen);
    for my $list (qw(Activations Assets Configurations Management)) {
        my $kind = { Activations => 'activation', Assets => 'asset',
                     Configurations => 'configuration',
                     Management => 'management' }->{$list};
        for my $it (@{ $items->{Declarations}{$list} }) {
            $seen{$it->{Identifier}} = 1;
            next if ($Have{$who}{$it->{Identifier}} // '') eq $it->{ServerToken};
            my ($s, $d) = ddm_json($who, "declaration/$kind/$it->{Identifier}");
            Test::More::is($s, 200, "$who: $kind $it->{Identifier} fetched");
            Test::More::is($d->{ServerToken}, $it->{ServerToken},
                           "$who: $it->{Identifier} has the manifest's ServerToken");
            $fetched{$it->{Identifier}} = $d;
            $Have{$who}{$it->{Identifier}} = $it->{ServerToken};
        }
    }
    delete $Have{$who}{$_} for grep { !$seen{$_} } keys %{ $Have{$who} };
    return (\%fetched, $items);
}

sub vector_json { vector("kmfddm/$_[0]") }

{
    no strict 'refs';
    *{"Test::Base::Filter::$_"} = \&{"main::$_"}
        for qw(api api_json ddm ddm_json plist device encode_base64);
}

run_tests();

__DATA__

=== TEST 1: declarations are validated and stored with a ServerToken computed from their content
--- request
GET /t
--- error_code: 204
--- after_each eval
sub {
    for my $id (sort keys %::Decl) {
        my $r = ::api('PUT', '/v1/ddm/declarations', $::Decl{$id});
        Test::More::is($r->{status}, 204, "PUT $id: 204");
        my ($st, $d) = ::api_json('GET', "/v1/ddm/declarations/$id");
        Test::More::is($st, 200, "GET $id");
        Test::More::like($d->{ServerToken}, qr/^[0-9a-f]{32}\z/, "$id: ServerToken");
        my %want = (%{ $::Decl{$id} }, ServerToken => $d->{ServerToken});
        Test::More::is_deeply($d, \%want, "$id: stored as given, plus ServerToken");
        $::Token{$id} = $d->{ServerToken};
    }
    # the same content again: the same token, nothing changes (KMFDDM: 304)
    my $r = ::api('PUT', '/v1/ddm/declarations',
                  { %{ $::Decl{'com.example.passcode'} }, ServerToken => 'mine' });
    Test::More::is($r->{status}, 304, 'unchanged declaration: 304, its ServerToken ignored');
    my ($st, $list) = ::api_json('GET', '/v1/ddm/declarations');
    Test::More::is_deeply($list, [ sort keys %::Decl ], 'GET /v1/ddm/declarations lists them');
    my %uniq = map { $_ => 1 } values %::Token;
    Test::More::is(scalar keys %uniq, scalar keys %::Decl, 'each has its own token');
}



=== TEST 2: sets and enrollment sets; what the device would get
--- request
GET /t
--- error_code: 204
--- after_each eval
sub {
    for my $id (qw(com.example.activation com.example.passcode com.example.status
                   com.example.properties)) {
        Test::More::is(::api('PUT', "/v1/ddm/set-declarations/default?declaration=$id")->{status},
                       204, "set default += $id");
    }
    Test::More::is(::api('PUT', '/v1/ddm/set-declarations/default?declaration=com.example.passcode')->{status},
                   304, 'a second PUT of the same: 304');
    Test::More::is(::api('PUT', '/v1/ddm/set-declarations/default?declaration=nope')->{status},
                   404, 'an unknown declaration: 404');
    Test::More::is(::api('PUT', "/v1/ddm/enrollment-sets/$::MAC?set=default")->{status},
                   204, 'the Mac is in set default');
    my ($st, $l) = ::api_json('GET', '/v1/ddm/set-declarations/default');
    Test::More::is_deeply($l, [qw(com.example.activation com.example.passcode
                                  com.example.properties com.example.status)], 'set-declarations');
    ($st, $l) = ::api_json('GET', "/v1/ddm/enrollment-sets/$::MAC");
    Test::More::is_deeply($l, ['default'], 'enrollment-sets');
    ($st, $l) = ::api_json('GET', '/v1/ddm/declaration-sets/com.example.passcode');
    Test::More::is_deeply($l, ['default'], 'declaration-sets');
    ($st, $l) = ::api_json('GET', "/v1/ddm/declaration-items/$::MAC");
    Test::More::is_deeply($l->{Declarations}, {
        Activations => [ { Identifier => 'com.example.activation',
                           ServerToken => $::Token{'com.example.activation'} } ],
        Assets => [],
        Configurations => [
            { Identifier => 'com.example.passcode', ServerToken => $::Token{'com.example.passcode'} },
            { Identifier => 'com.example.status', ServerToken => $::Token{'com.example.status'} } ],
        Management => [ { Identifier => 'com.example.properties',
                          ServerToken => $::Token{'com.example.properties'} } ],
    }, 'declaration-items: the four manifests');
    my ($st2, $t) = ::api_json('GET', "/v1/ddm/tokens/$::MAC");
    Test::More::like($t->{SyncTokens}{DeclarationsToken}, qr/^[0-9a-f]{40}\z/, 'tokens');
    Test::More::is($l->{DeclarationsToken}, $t->{SyncTokens}{DeclarationsToken},
                   'the same DeclarationsToken in both');
    ($st, $t) = ::api_json('GET', "/v1/ddm/tokens/NOBODY");
    Test::More::like($t->{SyncTokens}{DeclarationsToken}, qr/^[0-9a-f]{40}\z/,
                     'an enrollment without declarations has a token too (never empty)');
}



=== TEST 3: enable: the first TokenUpdate queues DeclarativeManagement with SyncTokens; the device syncs all and reports status
--- request
GET /t
--- error_code: 204
--- after_each eval
sub {
    ::enroll();
    my ($type, $uuid, $data) = ::command_data(::next_command('mac'));
    Test::More::is($type, 'DeclarativeManagement', 'the device gets DeclarativeManagement');
    my (undef, $t) = ::api_json('GET', "/v1/ddm/tokens/$::MAC");
    my $token = $t->{SyncTokens}{DeclarationsToken};
    Test::More::is($data->{SyncTokens}{DeclarationsToken}, $token, 'Data carries the DeclarationsToken');
    Test::More::like($data->{SyncTokens}{Timestamp}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\z/, 'and a Timestamp');
    ::ack('mac', $uuid);
    Test::More::is(::next_command('mac'), '', 'one command only');

    # the device: tokens (Apple: when the command had no Data), items, each declaration
    my ($st, $tok) = ::ddm_json('mac', 'tokens');
    Test::More::is($st, 200, 'tokens: 200');
    Test::More::is($tok->{SyncTokens}{DeclarationsToken}, $token, 'tokens: the same token');
    my ($fetched) = ::sync('mac', $token);
    Test::More::is_deeply([ sort keys %$fetched ],
        [qw(com.example.activation com.example.passcode com.example.properties com.example.status)],
        'each declaration fetched');
    Test::More::is_deeply($fetched->{'com.example.passcode'},
        { %{ $::Decl{'com.example.passcode'} }, ServerToken => $::Token{'com.example.passcode'} },
        'a declaration as it was PUT');

    # the first status report of a real device
    my $r = ::ddm('mac', 'status', ::vector_json('test/e2e/testdata/status.1st.json'));
    Test::More::is($r->{status}, 200, 'status: 200');
    Test::More::is($r->{body}, '', 'status: empty body');
    my (undef, $v) = ::api_json('GET', "/v1/ddm/status-values/$::MAC?prefix=management.client-capabilities.supported-versions");
    Test::More::is_deeply($v, [ { path => 'management.client-capabilities.supported-versions',
                                  value => ['1.0.0'] } ], 'status-values, filtered by prefix');
    (undef, $v) = ::api_json('GET', "/v1/ddm/status-values/$::MAC");
    Test::More::ok(scalar(grep { $_->{path} eq 'management.client-capabilities.supported-payloads.status-items' } @$v),
                   'every value by its dotted path');
}



=== TEST 4: status reports: declaration status with errors, surfaced through the API; incremental reports merge
--- request
GET /t
--- error_code: 204
--- after_each eval
sub {
    Test::More::is(::api('PUT', '/v1/ddm/set-declarations/default?declaration=com.example.test')->{status}, 204);
    my $r = ::ddm('mac', 'status', ::vector_json('test/e2e/testdata/status.D0.error.json'));
    Test::More::is($r->{status}, 200, 'status with a declaration error: 200');
    my (undef, $ds) = ::api_json('GET', "/v1/ddm/declaration-status/$::MAC");
    my ($t) = grep { $_->{identifier} eq 'com.example.test' } @$ds;
    Test::More::is($t->{valid}, 'unknown', 'declaration-status: valid');
    Test::More::is($t->{manifest}, 'configurations', 'declaration-status: its manifest');
    Test::More::is($t->{reasons}[0]{code}, 'Info.NotReferencedByActivation', 'the reason');
    Test::More::is($t->{current}, JSON::PP::false,
                   'a report of another ServerToken is not current');
    # an incremental report about the version only: the rest stays
    $r = ::ddm('mac', 'status', $::JSON->encode({ StatusItems => { device => {
        'operating-system' => { version => '14.1' } } }, Errors => [] }));
    my (undef, $v) = ::api_json('GET', "/v1/ddm/status-values/$::MAC?prefix=device.operating-system.version");
    Test::More::is_deeply($v, [ { path => 'device.operating-system.version', value => '14.1' } ],
                          'the new value');
    (undef, $v) = ::api_json('GET', "/v1/ddm/status-values/$::MAC?prefix=device.identifier.serial-number");
    Test::More::is(scalar @$v, 1, 'the first report\'s values are kept (merged)');
    (undef, $v) = ::api_json('GET', "/v1/ddm/status-values/$::MAC?prefix=management.client-capabilities.supported-versions");
    Test::More::is(scalar @$v, 1, 'earlier values kept (merged)');
    (undef, $ds) = ::api_json('GET', "/v1/ddm/declaration-status/$::MAC");
    Test::More::is(scalar(grep { $_->{identifier} eq 'com.example.test' } @$ds), 1,
                   'declaration status kept');
    # Errors of a report
    $r = ::ddm('mac', 'status', $::JSON->encode({ StatusItems => {}, Errors => [
        { StatusItem => 'softwareupdate.failure-reason',
          Reasons => [ { Code => 'Error.StatusItemUnavailable', Description => 'not now' } ] } ] }));
    Test::More::is($r->{status}, 200);
    my (undef, $e) = ::api_json('GET', "/v1/ddm/status-errors/$::MAC");
    Test::More::is($e->[0]{StatusItem}, 'softwareupdate.failure-reason', 'status-errors');
    Test::More::is($e->[0]{Reasons}[0]{Code}, 'Error.StatusItemUnavailable', 'with its reasons');
    Test::More::like($e->[0]{status_received}, qr/^\d{4}-/, 'and when it came');
}



=== TEST 5: a full report replaces what incremental ones merged (real iPhone report)
--- request
GET /t
--- error_code: 204
--- after_each eval
sub {
    my $full = $::JSON->decode(::vector_json('ddm/testdata/A047820F-FC6B-4104-BED0-466876D82BB8.20220628-103225.001918.status.json'));
    $full->{FullReport} = JSON::PP::true;
    my $r = ::ddm('mac', 'status', $::JSON->encode($full));
    Test::More::is($r->{status}, 200, 'full report: 200');
    my (undef, $v) = ::api_json('GET', "/v1/ddm/status-values/$::MAC?prefix=device.identifier.serial-number");
    Test::More::is_deeply($v, [], 'a value the full report lacks is gone');
    (undef, $v) = ::api_json('GET', "/v1/ddm/status-values/$::MAC?prefix=device.operating-system.version");
    Test::More::is_deeply($v, [ { path => 'device.operating-system.version', value => '16.0' } ],
                          'the full report\'s values');
    my (undef, $ds) = ::api_json('GET', "/v1/ddm/declaration-status/$::MAC");
    Test::More::is(scalar(grep { $_->{identifier} eq 'com.example.test' } @$ds), 0,
                   'so is the old declaration status');
    my ($bad) = grep { $_->{identifier} eq '0FCD2F56-D5BC-48EA-B98D-E0CCC0C6F9E0' } @$ds;
    Test::More::is($bad->{valid}, 'invalid', 'the full report\'s declaration status');
    Test::More::is($bad->{reasons}[0]{code}, 'Error.ConfigurationCannotBeApplied', 'its error');
}



=== TEST 6: a change: a new ServerToken, only the changed declaration is fetched; the change is marked for the worker
--- request
GET /t
--- error_code: 204
--- after_each eval
sub {
    my (undef, $t0) = ::api_json('GET', "/v1/ddm/tokens/$::MAC");
    my %d = %{ $::Decl{'com.example.passcode'} };
    $d{Payload} = { %{ $d{Payload} }, MinimumLength => 8 };
    Test::More::is(::api('PUT', '/v1/ddm/declarations', \%d)->{status}, 204, 'edited');
    Test::More::is(redis('ZSCORE', 'mdm:ddm:dirty', 'd:com.example.passcode') > 0, 1,
                   'marked dirty for the worker');
    my (undef, $t1) = ::api_json('GET', "/v1/ddm/tokens/$::MAC");
    Test::More::isnt($t1->{SyncTokens}{DeclarationsToken}, $t0->{SyncTokens}{DeclarationsToken},
                     'the DeclarationsToken changed');
    my ($fetched) = ::sync('mac', $t1->{SyncTokens}{DeclarationsToken});
    Test::More::is_deeply([ sort keys %$fetched ], ['com.example.passcode', 'com.example.test'],
                          'only the changed (and the newly added) declaration fetched');
    Test::More::is($fetched->{'com.example.passcode'}{Payload}{MinimumLength}, 8, 'the new content');
    Test::More::isnt($fetched->{'com.example.passcode'}{ServerToken}, $::Token{'com.example.passcode'},
                     'a new ServerToken');
}



=== TEST 7: removal: the declaration leaves the manifest and answers 404 (the device deletes it)
--- request
GET /t
--- error_code: 204
--- after_each eval
sub {
    Test::More::is(::api('DELETE', '/v1/ddm/set-declarations/default?declaration=com.example.test')->{status}, 204);
    ::sync('mac');
    Test::More::ok(!exists $::Have{mac}{'com.example.test'}, 'gone from declaration-items');
    my $r = ::ddm('mac', 'declaration/configuration/com.example.test');
    Test::More::is($r->{status}, 404, 'a declaration the enrollment lacks: 404');
    $r = ::ddm('mac', 'declaration/management/com.example.passcode');
    Test::More::is($r->{status}, 404, 'one of its declarations under another kind: 404');
    Test::More::is(::api('DELETE', '/v1/ddm/declarations/com.example.test')->{status}, 204,
                   'DELETE a declaration');
    Test::More::is(::api('GET', '/v1/ddm/declarations/com.example.test')->{status}, 404, 'it is gone');
}
--- error_log
no configuration declaration "com.example.test", answered 404



=== TEST 8: the user channel is an enrollment of its own, with its own sets and status
--- request
GET /t
--- error_code: 204
--- after_each eval
sub {
    Test::More::is(::api('PUT', '/v1/ddm/set-declarations/user?declaration=com.example.properties')->{status}, 204);
    Test::More::is(::api('PUT', "/v1/ddm/enrollment-sets/$::USER?set=user")->{status}, 204);
    ::enroll_user();
    my ($type, $uuid, $data) = ::command_data(::next_command('user'));
    Test::More::is($type, 'DeclarativeManagement', 'the user channel is told too');
    ::ack('user', $uuid);
    my (undef, $tu) = ::api_json('GET', "/v1/ddm/tokens/$::USER");
    my (undef, $td) = ::api_json('GET', "/v1/ddm/tokens/$::MAC");
    Test::More::isnt($tu->{SyncTokens}{DeclarationsToken}, $td->{SyncTokens}{DeclarationsToken},
                     'its own DeclarationsToken');
    my ($fetched, $items) = ::sync('user', $data->{SyncTokens}{DeclarationsToken});
    Test::More::is_deeply([ keys %$fetched ], ['com.example.properties'], 'its own declarations');
    Test::More::is(::ddm('user', 'declaration/configuration/com.example.passcode')->{status}, 404,
                   'not the device channel\'s');
    ::ddm('user', 'status', $::JSON->encode({ StatusItems => { 'account' => { 'list' => { 'x' => 1 } } },
                                             Errors => [] }));
    my (undef, $v) = ::api_json('GET', "/v1/ddm/status-values/$::USER");
    Test::More::is_deeply($v, [ { path => 'account.list.x', value => 1 } ], 'its own status');
    (undef, $v) = ::api_json('GET', "/v1/ddm/status-values/$::MAC?prefix=account");
    Test::More::is_deeply($v, [], 'not in the device channel\'s');
}
--- error_log
no configuration declaration "com.example.passcode", answered 404



=== TEST 9: re-enrollment: Authenticate and the first TokenUpdate queue DeclarativeManagement again
--- request
GET /t
--- error_code: 204
--- after_each eval
sub {
    ::enroll();
    my ($type, $uuid, $data) = ::command_data(::next_command('mac'));
    Test::More::is($type, 'DeclarativeManagement', 're-enrolled: told to sync');
    my (undef, $t) = ::api_json('GET', "/v1/ddm/tokens/$::MAC");
    Test::More::is($data->{SyncTokens}{DeclarationsToken}, $t->{SyncTokens}{DeclarationsToken},
                   'with the current token');
    ::ack('mac', $uuid);
    # a second TokenUpdate is no enrollment: nothing new
    device('/mdm/checkin', $::CT, 'mac',
           plist_set(vector('nanomdm/mdm/testdata/TokenUpdate.2.plist'), UDID => $::MAC));
    Test::More::is(::next_command('mac'), '', 'a later TokenUpdate queues nothing');
}



=== TEST 10: an enrollment without declarations gets no DeclarativeManagement at enrollment
--- request
GET /t
--- error_code: 204
--- after_each eval
sub {
    Test::More::is(::api('DELETE', "/v1/ddm/enrollment-sets/$::MAC?set=default")->{status}, 204);
    ::enroll();
    Test::More::is(::next_command('mac'), '', 'no command');
    Test::More::is(::api('PUT', "/v1/ddm/enrollment-sets/$::MAC?set=default")->{status}, 204);
}



=== TEST 11: unknown Endpoint: 400 and one log line
--- request eval
"PUT /mdm/checkin\n" . plist(UDID => $::MAC, MessageType => 'DeclarativeManagement', Endpoint => 'nonsense')
--- more_headers eval
"Content-Type: $::CT"
--- signed_by: mac
--- error_code: 400
--- grep_error_log eval
qr/answered \d+: .*?(?=, client: )/
--- grep_error_log_out
answered 400: unknown Endpoint



=== TEST 12: a bad identifier in declaration/: 400 and one log line
--- request eval
"PUT /mdm/checkin\n" . plist(UDID => $::MAC, MessageType => 'DeclarativeManagement',
                             Endpoint => 'declaration/configuration/' . ('x' x 65))
--- more_headers eval
"Content-Type: $::CT"
--- signed_by: mac
--- error_code: 400
--- grep_error_log eval
qr/answered \d+: .*?(?=, client: )/
--- grep_error_log_out
answered 400: Endpoint declaration/ with a bad Identifier



=== TEST 13: an unknown kind in declaration/: 400
--- request eval
"PUT /mdm/checkin\n" . plist(UDID => $::MAC, MessageType => 'DeclarativeManagement',
                             Endpoint => 'declaration/profile/com.example.passcode')
--- more_headers eval
"Content-Type: $::CT"
--- signed_by: mac
--- error_code: 400
--- grep_error_log eval
qr/answered \d+: .*?(?=, client: )/
--- grep_error_log_out
answered 400: Endpoint declaration/ with an unknown kind



=== TEST 14: malformed status JSON: 400 and one log line
--- request eval
"PUT /mdm/checkin\n" . plist(UDID => $::MAC, MessageType => 'DeclarativeManagement',
                             Endpoint => 'status', Data => \'{"StatusItems": {')
--- more_headers eval
"Content-Type: $::CT"
--- signed_by: mac
--- error_code: 400
--- grep_error_log eval
qr/answered \d+: .*?(?=, client: )/
--- grep_error_log_out
answered 400: malformed status report JSON



=== TEST 15: a status report that is JSON but not a report: 400
--- request eval
"PUT /mdm/checkin\n" . plist(UDID => $::MAC, MessageType => 'DeclarativeManagement',
                             Endpoint => 'status', Data => \'{"StatusItems": [1]}')
--- more_headers eval
"Content-Type: $::CT"
--- signed_by: mac
--- error_code: 400
--- grep_error_log eval
qr/answered \d+: .*?(?=, client: )/
--- grep_error_log_out
answered 400: status report is not {StatusItems: {}, Errors: [], FullReport: bool}



=== TEST 16: status without Data: 400
--- request eval
"PUT /mdm/checkin\n" . plist(UDID => $::MAC, MessageType => 'DeclarativeManagement', Endpoint => 'status')
--- more_headers eval
"Content-Type: $::CT"
--- signed_by: mac
--- error_code: 400
--- grep_error_log eval
qr/answered \d+: .*?(?=, client: )/
--- grep_error_log_out
answered 400: status without Data



=== TEST 17: an oversized status report (more values than one report may carry): 400, nothing stored
--- request eval
"PUT /mdm/checkin\n" . plist(UDID => $::MAC, MessageType => 'DeclarativeManagement', Endpoint => 'status',
    Data => \JSON::PP->new->encode({ StatusItems => { big => { map { ("k$_" => $_) } 1 .. 4097 } },
                                      Errors => [] }))
--- more_headers eval
"Content-Type: $::CT"
--- signed_by: mac
--- error_code: 400
--- grep_error_log eval
qr/answered \d+: .*?(?=, client: )/
--- grep_error_log_out
answered 400: status report has too many values
--- redis_check eval
[ [ "HEXISTS mdm:ddm:status:{$::MAC} big.k1", "0" ] ]



=== TEST 18: a status report nested deeper than 32: 400
--- request eval
my $j = '1'; $j = qq({"a":$j}) for 1 .. 40;
"PUT /mdm/checkin\n" . plist(UDID => $::MAC, MessageType => 'DeclarativeManagement', Endpoint => 'status',
    Data => \qq({"StatusItems":$j,"Errors":[]}))
--- more_headers eval
"Content-Type: $::CT"
--- signed_by: mac
--- error_code: 400
--- grep_error_log eval
qr/answered \d+: .*?(?=, client: )/
--- grep_error_log_out
answered 400: status report nests too deep



=== TEST 19: DeclarativeManagement from an unenrolled device: 400, as any check-in
--- request eval
"PUT /mdm/checkin\n" . plist(UDID => 'STRANGER-1', MessageType => 'DeclarativeManagement', Endpoint => 'tokens')
--- more_headers eval
"Content-Type: $::CT"
--- signed_by: stranger
--- error_code: 400
--- grep_error_log eval
qr/answered \d+: .*?(?=, client: )/
--- grep_error_log_out
answered 400: unknown enrollment: no Authenticate for device STRANGER-1



=== TEST 20: DeclarativeManagement with another device's certificate: refused, as any check-in
--- request eval
"PUT /mdm/checkin\n" . plist(UDID => $::MAC, MessageType => 'DeclarativeManagement', Endpoint => 'tokens')
--- more_headers eval
"Content-Type: $::CT"
--- signed_by: stranger
--- error_code: 400
--- grep_error_log eval
qr/answered \d+: .*?(?=, client: )/
--- grep_error_log_out
answered 400: certificate is not bound to this enrollment



=== TEST 21: API: a declaration of an unknown Type family: 400 and one log line
--- request eval
"PUT /v1/ddm/declarations\n" . JSON::PP->new->encode({ Type => 'com.apple.profile.x', Identifier => 'a', Payload => {} })
--- more_headers eval
"Authorization: Basic " . encode_base64('nanomdm:secret', '')
--- error_code: 400
--- grep_error_log eval
qr/answered \d+: .*?(?=, client: )/
--- grep_error_log_out
answered 400: Type is no com.apple.{activation,asset,configuration,management}.* string



=== TEST 22: API: an Identifier of 65 octets: 400
--- request eval
"PUT /v1/ddm/declarations\n" . JSON::PP->new->encode({ Type => 'com.apple.configuration.management.test',
                                                       Identifier => 'x' x 65, Payload => {} })
--- more_headers eval
"Authorization: Basic " . encode_base64('nanomdm:secret', '')
--- error_code: 400
--- grep_error_log eval
qr/answered \d+: .*?(?=, client: )/
--- grep_error_log_out
answered 400: Identifier is no [A-Za-z0-9._@+:=~-]{1,64} string



=== TEST 23: API: a Payload that is no object: 400
--- request eval
"PUT /v1/ddm/declarations\n" . JSON::PP->new->encode({ Type => 'com.apple.configuration.management.test',
                                                       Identifier => 'a', Payload => [] })
--- more_headers eval
"Authorization: Basic " . encode_base64('nanomdm:secret', '')
--- error_code: 400
--- grep_error_log eval
qr/answered \d+: .*?(?=, client: )/
--- grep_error_log_out
answered 400: Payload is no object



=== TEST 24: API: a body that is not JSON: 400
--- request
PUT /v1/ddm/declarations
{"Type":
--- more_headers eval
"Authorization: Basic " . encode_base64('nanomdm:secret', '')
--- error_code: 400
--- grep_error_log eval
qr/answered \d+: .*?(?=, client: )/
--- grep_error_log_out
answered 400: the body is not JSON



=== TEST 25: API: an unknown ddm endpoint: 404
--- request
GET /v1/ddm/nonsense/x
--- more_headers eval
"Authorization: Basic " . encode_base64('nanomdm:secret', '')
--- error_code: 404
--- grep_error_log eval
qr/answered \d+: .*?(?=, client: )/
--- grep_error_log_out
answered 404: unknown ddm endpoint



=== TEST 26: API: a bad set name in ?set=: 400
--- request
PUT /v1/ddm/enrollment-sets/X?set=a%2Fb
--- more_headers eval
"Authorization: Basic " . encode_base64('nanomdm:secret', '')
--- error_code: 400
--- grep_error_log eval
qr/answered \d+: .*?(?=, client: )/
--- grep_error_log_out
answered 400: ?set= names no valid set



=== TEST 27: API: a set name of 65 octets: 400
--- request eval
"GET /v1/ddm/set-declarations/" . ('s' x 65)
--- more_headers eval
"Authorization: Basic " . encode_base64('nanomdm:secret', '')
--- error_code: 400
--- grep_error_log eval
qr/answered \d+: .*?(?=, client: )/
--- grep_error_log_out
answered 400: bad identifier or set name: [A-Za-z0-9._@+:=~-]{1,64}



=== TEST 28: each DDM check-in is an event (webhooks: mdm.DeclarativeManagement) with its raw body
--- request
GET /t
--- error_code: 204
--- after_each eval
sub {
    redis('DEL', 'mdm:events');
    my $r = ::ddm('mac', 'declaration-items');
    Test::More::is($r->{status}, 200);
    my $e = redis('XREVRANGE', 'mdm:events', '+', '-', 'COUNT', 1)->[0][1];
    my %f = @$e;
    Test::More::is($f{type}, 'DeclarativeManagement', 'event type');
    Test::More::is($f{id}, $::MAC, 'its enrollment');
    Test::More::like($f{body}, qr{<string>declaration-items</string>}, 'the raw body');
}



=== TEST 29: Redis down: 503 at once, one log line; back up: served again
--- request
GET /t
--- error_code: 204
--- after_each eval
sub {
    redis_stop();
    my $t0 = Time::HiRes::time();
    my $r = ::ddm('mac', 'tokens');
    Test::More::is($r->{status}, 503, 'Redis down: 503');
    Test::More::ok(Time::HiRes::time() - $t0 < 3, 'fast');
    Test::More::is(::api('GET', "/v1/ddm/tokens/$::MAC")->{status}, 503, 'the API: 503');
    redis_start();
    for (1 .. 50) {
        $r = ::ddm('mac', 'tokens');
        last if $r->{status} != 503;
        Time::HiRes::sleep(0.1);
    }
    # the test Redis keeps nothing across a restart: enroll again
    Test::More::isnt($r->{status}, 503, 'Redis back: answered again');
    ::enroll();
    Test::More::is(::ddm('mac', 'tokens')->{status}, 200, 'and served');
}



=== TEST 30: API: a declaration with a key of its own: 400
--- request eval
"PUT /v1/ddm/declarations\n" . JSON::PP->new->encode({ Type => 'com.apple.configuration.management.test',
                                                       Identifier => 'a', Payload => {}, Extra => 1 })
--- more_headers eval
"Authorization: Basic " . encode_base64('nanomdm:secret', '')
--- error_code: 400
--- grep_error_log eval
qr/answered \d+: .*?(?=, client: )/
--- grep_error_log_out
answered 400: a declaration has Type, Identifier, Payload (and ServerToken, which the server sets) only



=== TEST 31: incremental reports cannot grow the stored status without bound (10,000 values, then it starts anew)
--- request
GET /t
--- error_code: 204
--- after_each eval
sub {
    for my $round (1 .. 3) {
        my $r = ::ddm('mac', 'status', $::JSON->encode({ StatusItems => { test => {
            map { ("r$round-$_" => $_) } 1 .. 4000 } }, Errors => [] }));
        Test::More::is($r->{status}, 200, "report $round");
    }
    Test::More::is(redis('HLEN', "mdm:ddm:status:{$::MAC}"), 4000,
                   'the third report would pass 10,000: it starts anew');
    Test::More::is(redis('HEXISTS', "mdm:ddm:status:{$::MAC}", 'test.r3-1'), 1, 'with its values');
    Test::More::ok(redis('TTL', "mdm:ddm:status:{$::MAC}") > 2500000, 'and a TTL of 30 days');
}



=== TEST 32: DeclarativeManagement through mdm_server (one URL for check-ins and reports)
--- request
GET /t
--- error_code: 204
--- after_each eval
sub {
    my $body = ::plist(UDID => $::MAC, MessageType => 'DeclarativeManagement',
                       Endpoint => 'declaration-items');
    my $r = ::device('/mdm', $::CT, 'mac', $body);
    Test::More::is($r->{status}, 200, 'served');
    my $j = $::JSON->decode($r->{body});
    Test::More::is(ref $j->{Declarations}{Configurations}, 'ARRAY', 'the manifest');
}



=== TEST 33: API: a NUL byte in a set name: 400
--- request
PUT /v1/ddm/enrollment-sets/X?set=a%00b
--- more_headers eval
"Authorization: Basic " . encode_base64('nanomdm:secret', '')
--- error_code: 400
--- grep_error_log eval
qr/answered \d+: .*?(?=, client: )/
--- grep_error_log_out
answered 400: ?set= names no valid set



=== TEST 34: API: admin data is bounded: 10,000 declarations (409 for a new one, an existing one still edits), 100 sets an enrollment
--- request
GET /t
--- error_code: 204
--- after_each eval
sub {
    my %d = (Type => 'com.apple.configuration.passcode.settings', Identifier => 'com.example.cap.new',
             Payload => { MinimumLength => 6 });
    my %old = (%d, Identifier => 'com.example.cap.old');
    Test::More::is(::api('PUT', '/v1/ddm/declarations', \%old)->{status}, 204, 'one declaration');
    redis('EVAL', q{for i = 1, 10000 do redis.call('SADD', 'mdm:ddm:decls', 'fake.' .. i) end}, 0);
    my ($st, $e) = ::api_json('PUT', '/v1/ddm/declarations', \%d);
    Test::More::is($st, 409, 'a new declaration past 10,000: 409');
    Test::More::like($e->{error}, qr/already 10000 declarations/, 'saying why');
    Test::More::is(redis('EXISTS', 'mdm:ddm:decl:com.example.cap.new'), 0, 'nothing stored');
    Test::More::is(::api('PUT', '/v1/ddm/declarations', { %old, Payload => { MinimumLength => 9 } })->{status},
                   204, 'an existing one still takes an edit');
    redis('EVAL', q{for i = 1, 10000 do redis.call('SREM', 'mdm:ddm:decls', 'fake.' .. i) end}, 0);
    Test::More::is(::api('PUT', '/v1/ddm/declarations', \%d)->{status}, 204, 'below the bound: taken');
    Test::More::is(::api('DELETE', "/v1/ddm/declarations/$_")->{status}, 204, "$_ deleted")
        for qw(com.example.cap.new com.example.cap.old);

    my $k = "mdm:ddm:enrsets:{$::MAC}";
    my @had = @{ redis('SMEMBERS', $k) };
    redis('SADD', $k, map { "cap$_" } 1 .. 100 - @had);
    ($st, $e) = ::api_json('PUT', "/v1/ddm/enrollment-sets/$::MAC?set=onemore");
    Test::More::is($st, 409, 'an enrollment in 100 sets: a 101st is 409');
    Test::More::like($e->{error}, qr/in 100 sets already/, 'saying why');
    Test::More::is(redis('SISMEMBER', 'mdm:ddm:setenrs:onemore', $::MAC), 0, 'nothing stored');
    Test::More::is(::api('PUT', "/v1/ddm/enrollment-sets/$::MAC?set=cap1")->{status}, 304,
                   'a set it is in already: unchanged, as before');
    redis('SREM', $k, map { "cap$_" } 1 .. 100 - @had);
}
