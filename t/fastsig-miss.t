# The first sight of a certificate (ngx_http_mdm_fastsig_chain.c: a
# certificate this worker has neither a key entry nor a verdict for, its
# chain checked from the DER) against the full verification: thousands of
# certificates never seen before (t/fastsig_miss_gen.py: good, expired, not
# yet valid, wrong CA, wrong EKU/KU, through intermediates, EC issuers, bad
# certificate signatures, non-minimal DER, odd extensions and names, and
# single-byte corruptions), each sent to a location with the cache and to
# one without; every verdict must be the same, and the first sight must
# really have admitted the good ones.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use JSON::PP qw(decode_json);

no_shuffle();
worker_connections(1024);

our $FLIPS = 1500;
our $BODY = plist_set(vector("nanomdm/mdm/testdata/Authenticate.2.plist"),
                      UDID => 'MISS-TEMPLATE');
$BODY =~ s/^\s+|\s+\z//g;

# the CA bundle (miss-ca.pem) must exist before nginx starts
our @IN = do {
    my $dir = pki_dir();
    my $tpl = "$dir/miss-body.plist";
    open my $fh, '>:raw', $tpl or die $!;
    print $fh $BODY;
    close $fh;
    my $out = "$dir/miss-inputs.jsonl";
    system('python3', "$ENV{PWD}/t/fastsig_miss_gen.py", $dir, $tpl, $out,
           20261203, $FLIPS) == 0 or die "t/fastsig_miss_gen.py failed\n";
    open $fh, '<', $out or die $!;
    map { decode_json($_) } <$fh>;
};

mdm_defaults(
    http_config => 'mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=10s;',
    config => q{
        mdm_identity_ca $TEST_NGINX_PKI/miss-ca.pem;
        location = /fast { mdm_checkin; mdm_identity_cache 100000 verdicts=0; }
        location = /full { mdm_checkin; mdm_identity_cache off; }
    },
);

sub req ($$$) {
    my ($path, $body, $sig) = @_;
    return http_request(PUT => $path, $body,
        [ 'Content-Type' => $t::MDM::CheckinType, 'Mdm-Signature' => $sig ]);
}

sub status_of ($@) {
    my ($path, @in) = @_;
    my @r;
    while (my @batch = splice @in, 0, 100) {
        push @r, map { $_->{status} // 0 }
                 @{ concurrent_requests(server_port(),
                        [ map { req($path, $_->{body}, $_->{sig}) } @batch ],
                        timeout => 60) };
    }
    return @r;
}

sub differential () {
    # /fast first, where every certificate is new to the worker, then the
    # same batch to /full: the pairs are seconds apart, for the inputs
    # whose validity ends soon
    my (@fast, @full);
    for (my $i = 0; $i < @IN; $i += 100) {
        my @batch = @IN[$i .. ($i + 99 < $#IN ? $i + 99 : $#IN)];
        push @fast, status_of("/fast", @batch);
        push @full, status_of("/full", @batch);
    }

    my @diff = grep { $fast[$_] != $full[$_] } 0 .. $#IN;
    Test::More::is(scalar @diff, 0, scalar(@IN) . " inputs: the same verdict at first sight and on the full path")
        or Test::More::diag(join "\n", map { "$IN[$_]{label}: first sight $fast[$_], full $full[$_]" }
                                       @diff[0 .. ($#diff < 19 ? $#diff : 19)]);

    my %by;
    for my $i (0 .. $#IN) {
        (my $kind = $IN[$i]{label}) =~ s/ \d+$|@\d+$//;
        $kind =~ s/^flip \d+$/flip/;
        $by{$kind}{ $full[$i] }++;
    }
    Test::More::note(join "\n", map { my $k = $_; "$k: " . join(', ', map { "$_ x$by{$k}{$_}" } sort keys %{ $by{$k} }) } sort keys %by);

    # the inputs mean what they say (the full path's verdicts)
    for my $k ('good', 'from the root', 'via mid2 and sub2', 'EC root', 'EC mid',
               'not yet valid, within skew', 'keyAgreement only', 'no EKU',
               'unknown extension')
    {
        Test::More::is(join(',', keys %{ $by{$k} }), '200', "$k: accepted");
    }
    for my $k ('expired', 'not yet valid', 'wrong CA', 'pathlen exceeded',
               'expired intermediate', 'server-only intermediate',
               'intermediate without keyCertSign', 'server auth only',
               'keyEncipherment only', 'bad certificate signature',
               'serial changed after signing', 'unknown critical extension',
               'AKID of another key', 'tampered body')
    {
        Test::More::ok(!$by{$k}{200}, "$k: refused");
    }

    my $ok = grep { $_ == 200 } @full;
    Test::More::cmp_ok($ok, '>=', 12 * 15, "accepted by the full path: $ok of " . scalar(@IN));
}

run_tests();

__DATA__

=== TEST 1: first sight and full verification agree on every new certificate
--- request
GET /fast
--- error_code: 405
--- after_each eval
[ sub { ::differential() } ]
--- grep_error_log eval
qr/certificate chain checked at first sight/
--- grep_error_log_out eval
qr/\A(certificate chain checked at first sight\n){280,}\z/
