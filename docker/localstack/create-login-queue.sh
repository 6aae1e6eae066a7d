#!/bin/sh
# LocalStack runs this once it is ready: the exercise's queue, in us-east-1.
awslocal sqs create-queue --queue-name login-queue --region us-east-1
