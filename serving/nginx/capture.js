// Keep a copy of the response body for the access log, pass it on unchanged.
function collect(r, data, flags) {
    r.variables.response_body += data;
    r.sendBuffer(data, flags);
}

export default { collect };
